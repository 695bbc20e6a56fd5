package auth

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// The test vector of the reference (§4): password "guest", salt fa91eec6.
const guestSHA256 = "+pHuxkR9fCyrrwXjOD4BP4XbzO3l8LJr8YkThMgJ0yVHFRE+"

// salted builds base64(salt ‖ H(salt ‖ pw)) independently of the code under test.
func salted(alg string, salt, pw []byte) string {
	in := append(append([]byte{}, salt...), pw...)
	var d []byte
	switch alg {
	case "sha256":
		s := sha256.Sum256(in)
		d = s[:]
	case "sha512":
		s := sha512.Sum512(in)
		d = s[:]
	case "md5":
		s := md5.Sum(in)
		d = s[:]
	}
	return base64.StdEncoding.EncodeToString(append(append([]byte{}, salt...), d...))
}

func mustVerify(t *testing.T, alg, hash string, pw string, want bool) {
	t.Helper()
	got, err := VerifyPassword(alg, hash, []byte(pw))
	if err != nil {
		t.Fatalf("VerifyPassword(%q, …, %q): %v", alg, pw, err)
	}
	if got != want {
		t.Fatalf("VerifyPassword(%q, …, %q) = %v, want %v", alg, pw, got, want)
	}
}

func TestVerifyRabbitSHA256TestVector(t *testing.T) {
	raw, _ := base64.StdEncoding.DecodeString(guestSHA256)
	if got := hex.EncodeToString(raw[:4]); got != "fa91eec6" {
		t.Fatalf("salt of the vector = %s, want fa91eec6", got)
	}
	for _, alg := range []string{AlgSHA256, "SHA256", "sha256", "Rabbit_Password_Hashing_SHA256"} {
		mustVerify(t, alg, guestSHA256, "guest", true)
		mustVerify(t, alg, guestSHA256, "Guest", false)
		mustVerify(t, alg, guestSHA256, "", false)
	}
	if got := salted("sha256", raw[:4], []byte("guest")); got != guestSHA256 {
		t.Fatalf("independent construction = %s, want the vector", got)
	}
}

func TestVerifySaltedDigestsOfEveryAlgorithmAndSaltLength(t *testing.T) {
	for _, alg := range []string{"sha256", "sha512", "md5"} {
		for _, n := range []int{0, 1, 3, 4, 7, 16, 33} {
			salt := make([]byte, n)
			for i := range salt {
				salt[i] = byte(0xa5 ^ i*7)
			}
			pw := "s3cret-Ünïcode"
			h := salted(alg, salt, []byte(pw))
			t.Run(fmt.Sprintf("%s/salt%d", alg, n), func(t *testing.T) {
				for _, name := range []string{"rabbit_password_hashing_" + alg, strings.ToUpper(alg)} {
					mustVerify(t, name, h, pw, true)
					mustVerify(t, name, h, pw+"x", false)
				}
				// Unpadded base64, as Crystal's decoder accepts it.
				mustVerify(t, alg, strings.TrimRight(h, "="), pw, true)
			})
		}
	}
}

func TestVerifyKnownSHA512AndMD5Vectors(t *testing.T) {
	salt, _ := hex.DecodeString("fa91eec6")
	// Generated from the known salt of the SHA-256 vector, and pinned (cross-checked with
	// Python's hashlib) so that a change in the construction shows.
	const (
		sha512Hash = "+pHuxs2A56wBKSv4wcByVyX2y+4QDfR6/HmhUuy8AdI4MguGpRCeb+hnhPKuClQFN/uL6ci6fqAnGoZArargp4s++r8="
		md5Hash    = "+pHuxo/GiMN0CpBDrcGAY146Kpk="
	)
	if got := salted("sha512", salt, []byte("guest")); got != sha512Hash {
		t.Fatalf("sha512 construction = %s", got)
	}
	if got := salted("md5", salt, []byte("guest")); got != md5Hash {
		t.Fatalf("md5 construction = %s", got)
	}
	mustVerify(t, AlgSHA512, sha512Hash, "guest", true)
	mustVerify(t, AlgSHA512, sha512Hash, "guesT", false)
	mustVerify(t, AlgMD5, md5Hash, "guest", true)
	mustVerify(t, AlgMD5, md5Hash, "guesT", false)
}

func TestVerifyEmptyAlgorithmMeansMD5(t *testing.T) {
	h := salted("md5", []byte{1, 2, 3, 4}, []byte("pw"))
	mustVerify(t, "", h, "pw", true)
	mustVerify(t, "", h, "pW", false)
	// A SHA-256 hash without algorithm is read as MD5 with a 20-byte salt: it never matches.
	mustVerify(t, "", guestSHA256, "guest", false)
	// An empty algorithm with a bcrypt string is bcrypt.
	b, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	mustVerify(t, "", string(b), "pw", true)
}

func TestVerifyLegacyPrefixStripped(t *testing.T) {
	salt := []byte{9, 8, 7, 6}
	mustVerify(t, AlgSHA256, "$5$"+guestSHA256, "guest", true)
	mustVerify(t, AlgSHA512, "$6$"+salted("sha512", salt, []byte("pw")), "pw", true)
	mustVerify(t, AlgMD5, "$1$"+salted("md5", salt, []byte("pw")), "pw", true)
	// The prefix of another algorithm is not stripped: it is not base64.
	if _, err := VerifyPassword(AlgSHA256, "$6$"+guestSHA256, []byte("guest")); !errors.Is(err, ErrInvalidPasswordHash) {
		t.Fatalf("$6$ on sha256: err = %v, want ErrInvalidPasswordHash", err)
	}
}

func TestVerifyBcryptAsLavinMQWritesIt(t *testing.T) {
	// LavinMQ's API creates bcrypt hashes at cost 4.
	b, err := bcrypt.GenerateFromPassword([]byte("guest"), 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{AlgBcrypt, "BCRYPT", "bcrypt", ""} {
		mustVerify(t, alg, string(b), "guest", true)
		mustVerify(t, alg, string(b), "guesT", false)
	}
}

func TestEmptyHashNeverVerifies(t *testing.T) {
	for _, alg := range []string{"", AlgSHA256, AlgSHA512, AlgMD5, AlgBcrypt, AlgArgon2id} {
		for _, pw := range []string{"", "guest"} {
			mustVerify(t, alg, "", pw, false)
		}
	}
}

// Every unreadable hash is an error that names the field and the fault, never the value (and
// never the password).
func TestVerifyInvalidHashErrorsNameTheFieldNeverTheValue(t *testing.T) {
	const pw = "correct horse"
	highCost := "$2a$17$" + strings.Repeat("A", 53)
	tests := []struct {
		name, alg, hash, want string
		invalid               bool
	}{
		{"bad base64", AlgSHA256, "not*base64!!c2VjcmV0", "password_hash: not valid base64", true},
		{"short sha256 digest", AlgSHA256, base64.StdEncoding.EncodeToString(make([]byte, 31)), "password_hash: decoded 31 bytes", true},
		{"short sha512 digest", AlgSHA512, guestSHA256, "shorter than the 64-byte", true},
		{"short md5 digest", AlgMD5, "c2VjcmV0c2VjcmV0", "password_hash: decoded 12 bytes", true},
		{"bcrypt garbage", AlgBcrypt, "$2a$xyzzy-secret", "password_hash: not a valid bcrypt hash", true},
		{"bcrypt prefix missing", AlgBcrypt, "Zsecretsecret", "password_hash: not a valid bcrypt hash", true},
		{"bcrypt cost 17", AlgBcrypt, highCost, "bcrypt cost 17 above 16", true},
		{"argon2 shape", AlgArgon2id, "$argon2id$v=19$secret", "password_hash: argon2id is not", true},
		{"argon2 version", AlgArgon2id, "$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$c2VjcmV0c2VjcmV0c2VjcmV0", "version", true},
		{"argon2 params order", AlgArgon2id, "$argon2id$v=19$t=1,m=64,p=1$c2FsdHNhbHQ$c2VjcmV0c2VjcmV0c2VjcmV0", "parameters are not", true},
		{"argon2 memory huge", AlgArgon2id, "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$c2VjcmV0c2VjcmV0c2VjcmV0", "out of range", true},
		{"argon2 threads 0", AlgArgon2id, "$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$c2VjcmV0c2VjcmV0c2VjcmV0", "out of range", true},
		{"argon2 bad salt", AlgArgon2id, "$argon2id$v=19$m=64,t=1,p=1$!!$c2VjcmV0c2VjcmV0c2VjcmV0", "salt is not valid base64", true},
		{"argon2i", "", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$c2VjcmV0c2VjcmV0c2VjcmV0", "not valid base64", true}, // read as md5
		{"unsupported algorithm", "rabbit_password_hashing_sha1", guestSHA256, `hashing_algorithm "rabbit_password_hashing_sha1"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(tt.alg, tt.hash, []byte(pw))
			if err == nil || ok {
				t.Fatalf("VerifyPassword = %v, %v; want an error", ok, err)
			}
			if errors.Is(err, ErrInvalidPasswordHash) != tt.invalid {
				t.Errorf("errors.Is(ErrInvalidPasswordHash) = %v, want %v", !tt.invalid, tt.invalid)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			assertNoSecret(t, err.Error(), tt.hash, pw, "secret", "c2VjcmV0")
			// ImportHash rejects the same hash with the same kind of message.
			if _, err := ImportHash(tt.alg, tt.hash, AlgMD5); err == nil {
				t.Errorf("ImportHash accepted it")
			} else {
				assertNoSecret(t, err.Error(), tt.hash, "secret", "c2VjcmV0")
			}
		})
	}
}

func TestHashPasswordBcryptAtDefaultCost(t *testing.T) {
	alg, h, err := HashPassword([]byte("guest"), "")
	if err != nil {
		t.Fatal(err)
	}
	if alg != AlgBcrypt {
		t.Fatalf("algorithm = %q, want %q", alg, AlgBcrypt)
	}
	if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != 10 || DefaultBcryptCost != 10 {
		t.Fatalf("cost = %d, %v; want 10", cost, err)
	}
	mustVerify(t, alg, h, "guest", true)
}

func TestHasherBcryptRoundTrip(t *testing.T) {
	hs := Hasher{Algorithm: "bcrypt", BcryptCost: bcrypt.MinCost}
	alg, h, err := hs.Hash([]byte("pässword"))
	if err != nil {
		t.Fatal(err)
	}
	if alg != AlgBcrypt || !strings.HasPrefix(h, "$2a$04$") {
		t.Fatalf("got %q %q", alg, h)
	}
	mustVerify(t, alg, h, "pässword", true)
	mustVerify(t, alg, h, "password", false)
}

func TestHasherArgon2idRoundTrip(t *testing.T) {
	p := Argon2Params{Time: 1, MemoryKiB: 64, Threads: 2, SaltLen: 16, KeyLen: 32}
	alg, h, err := Hasher{Algorithm: "ARGON2ID", Argon2: p}.Hash([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=2\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)
	m := phc.FindStringSubmatch(h)
	if alg != AlgArgon2id || m == nil {
		t.Fatalf("got %q %q, want a PHC string", alg, h)
	}
	mustVerify(t, alg, h, "pw", true)
	mustVerify(t, "", h, "pw", true) // recognised by its prefix
	mustVerify(t, alg, h, "pW", false)

	// The encoding is the reference implementation's: recompute the key independently.
	salt, _ := base64.RawStdEncoding.DecodeString(m[1])
	key := argon2.IDKey([]byte("pw"), salt, 1, 64, 2, 32)
	if base64.RawStdEncoding.EncodeToString(key) != m[2] {
		t.Fatal("stored key is not argon2id(pw, salt, t=1, m=64, p=2)")
	}
	// A hash from another implementation (parameters chosen there) verifies.
	other := fmt.Sprintf("$argon2id$v=19$m=32,t=3,p=1$%s$%s", base64.RawStdEncoding.EncodeToString([]byte("somesaltsomesalt")),
		base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte("pw"), []byte("somesaltsomesalt"), 3, 32, 1, 24)))
	mustVerify(t, AlgArgon2id, other, "pw", true)
}

func TestHasherRefusesWhatItShouldNot(t *testing.T) {
	tests := []struct {
		name string
		h    Hasher
		pw   []byte
		want string
	}{
		{"legacy sha256 for new users", Hasher{Algorithm: AlgSHA256}, []byte("pw"), "imported users only"},
		{"md5 for new users", Hasher{Algorithm: "md5"}, []byte("pw"), "imported users only"},
		{"unknown algorithm", Hasher{Algorithm: "scrypt"}, []byte("pw"), "unsupported hashing_algorithm"},
		{"empty password", Hasher{}, nil, "empty password"},
		{"bcrypt over 72 bytes", Hasher{BcryptCost: bcrypt.MinCost}, []byte(strings.Repeat("p", 73)), "72 bytes"},
		{"bcrypt cost 3", Hasher{BcryptCost: 3}, []byte("pw"), "cost 3"},
		{"bcrypt cost 17", Hasher{BcryptCost: 17}, []byte("pw"), "cost 17"},
		{"argon2 time 0", Hasher{Algorithm: AlgArgon2id, Argon2: Argon2Params{MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32}}, []byte("pw"), "time 0"},
		{"argon2 short salt", Hasher{Algorithm: AlgArgon2id, Argon2: Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 4, KeyLen: 32}}, []byte("pw"), "salt length 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.h.Hash(tt.pw)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			assertNoSecret(t, err.Error(), string(tt.pw))
		})
	}
}

func TestImportHash(t *testing.T) {
	md5Hash := salted("md5", []byte{1, 2, 3, 4}, []byte("pw"))
	b, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	tests := []struct {
		alg, hash, def, want string
	}{
		{"", md5Hash, AlgMD5, AlgMD5},                    // RabbitMQ definitions: no algorithm is MD5
		{"", guestSHA256, AlgSHA256, AlgSHA256},          // LavinMQ's API: no algorithm is SHA-256
		{"SHA256", guestSHA256, AlgMD5, AlgSHA256},       // names are canonicalised
		{"lavinmq_bcrypt", string(b), AlgMD5, AlgBcrypt}, // bcrypt keeps LavinMQ's name
		{"", string(b), AlgSHA256, AlgBcrypt},            // a bcrypt string is recognised by its shape
		{AlgSHA512, "", AlgMD5, AlgSHA512},               // an empty hash is a user without a password
	}
	for _, tt := range tests {
		got, err := ImportHash(tt.alg, tt.hash, tt.def)
		if err != nil || got != tt.want {
			t.Errorf("ImportHash(%q, …, %q) = %q, %v; want %q", tt.alg, tt.def, got, err, tt.want)
		}
	}
	got, err := ImportHash("", guestSHA256, AlgSHA256)
	if err != nil || got != AlgSHA256 {
		t.Fatal(got, err)
	}
	mustVerify(t, got, guestSHA256, "guest", true)
	// A stated algorithm is not second-guessed: a bcrypt string said to be SHA-256 is refused.
	if _, err := ImportHash(AlgSHA256, string(b), AlgMD5); !errors.Is(err, ErrInvalidPasswordHash) {
		t.Fatalf("bcrypt as sha256: %v", err)
	}
}
