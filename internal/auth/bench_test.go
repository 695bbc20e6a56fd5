package auth

import (
	"context"
	"testing"
)

// BenchmarkVerifyBcrypt is the cost of one password check at the default bcrypt cost: what a
// login costs without the cache, and what an unknown user costs (the dummy hash).
func BenchmarkVerifyBcrypt(b *testing.B) {
	alg, h, err := HashPassword([]byte("wonderland"), "")
	if err != nil {
		b.Fatal(err)
	}
	pw := []byte("wonderland")
	for b.Loop() {
		if ok, err := VerifyPassword(alg, h, pw); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkVerifySHA256 is an imported RabbitMQ hash.
func BenchmarkVerifySHA256(b *testing.B) {
	pw := []byte("guest")
	for b.Loop() {
		if ok, err := VerifyPassword(AlgSHA256, guestSHA256, pw); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkVerifyCached is a local login answered by the verification cache (a reconnect).
func BenchmarkVerifyCached(b *testing.B) {
	users := NewUsers()
	u, err := DefaultUser("alice", "wonderland") // default cost: a miss would show
	if err != nil {
		b.Fatal(err)
	}
	users.Put(u)
	l, err := NewLocal(users, LocalOptions{Hasher: fastHasher})
	if err != nil {
		b.Fatal(err)
	}
	c := creds("alice", "wonderland")
	ctx := context.Background()
	if d, _, err := l.Authenticate(ctx, c); d != Allow {
		b.Fatal(d, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if d, _, _ := l.Authenticate(ctx, c); d != Allow {
			b.Fatal(d)
		}
	}
}

// BenchmarkChainCachedParallel is a reconnect storm through the whole chain (rate limiter
// included), from many goroutines.
func BenchmarkChainCachedParallel(b *testing.B) {
	users := NewUsers()
	u, err := NewUser("alice", []byte("wonderland"), fastHasher)
	if err != nil {
		b.Fatal(err)
	}
	users.Put(u)
	l, err := NewLocal(users, LocalOptions{Hasher: fastHasher})
	if err != nil {
		b.Fatal(err)
	}
	ch := NewChain(l)
	ctx := context.Background()
	if _, err := ch.Authenticate(ctx, creds("alice", "wonderland")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := creds("alice", "wonderland")
		for pb.Next() {
			if _, err := ch.Authenticate(ctx, c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
