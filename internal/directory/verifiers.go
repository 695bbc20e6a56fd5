package directory

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/store"
)

// VerifierNamespace is the store.Records namespace of the password verifiers: one record per
// user name, the auth.Verifier's binary form. Verifiers are never part of the definitions
// document, so neither GET /api/definitions nor a backup of definitions carries them.
const VerifierNamespace = "password-verifiers"

// maxDirtyVerifiers bounds the verifier writes waiting for the writer. A write dropped at the
// bound costs speed, never correctness: the verifier stays in memory, and after a restart the
// user logs in once by the hash and gets a new one.
const maxDirtyVerifiers = 1 << 16

// ErrBadPassword is returned by PutUserWithPassword for a password the hasher refuses (empty,
// too long for bcrypt); its message says why, never the password.
var ErrBadPassword = errors.New("password")

// PutUserWithPassword adds or replaces a user as PutUser does, with the password set from its
// plaintext pw: hashed with Options.Hasher (replacing u's hash and algorithm) and, when the
// directory has a PasswordKey, with a verifier kept beside the hash, so that the user's logins
// cost one HMAC. The verifier is stored behind the change, in its own record.
func (d *Directory) PutUserWithPassword(u auth.User, pw []byte) (auth.User, error) {
	alg, hash, err := d.opts.Hasher.Hash(pw)
	if err != nil {
		return auth.User{}, fmt.Errorf("%w: %s", ErrBadPassword, strings.TrimPrefix(err.Error(), "auth: "))
	}
	u.HashAlgorithm, u.PasswordHash = alg, hash
	stored, err := d.PutUser(u)
	if err == nil || errors.Is(err, ErrNotStored) {
		d.rememberPassword(stored, pw)
	}
	return stored, err
}

// rememberPassword keeps the verifier of pw for u, which pw was just hashed into.
func (d *Directory) rememberPassword(u auth.User, pw []byte) {
	if k := d.opts.PasswordKey; k != nil && u.Name != "" {
		d.users.SetVerifier(u.Name, k.NewVerifier(u, pw))
	}
}

// loadVerifiersLocked attaches the stored verifiers to their users: those made with the current
// key for the user as stored now (same ID, same hash). The others are deleted: made with another
// key (the key file was replaced), or for a password or a subject replaced since (a definitions
// file imported over the user, a user deleted while the write was queued). mu held; the change
// hook is not installed yet, so attaching writes nothing.
func (d *Directory) loadVerifiersLocked() error {
	st := d.opts.Store
	if st == nil {
		return nil
	}
	var stale []string
	kept := 0
	err := st.LoadRecords(VerifierNamespace, func(name string, val []byte) error {
		var v auth.Verifier
		k := d.opts.PasswordKey
		if v.UnmarshalBinary(val) != nil || k == nil || !k.Made(&v) || !d.users.SetVerifier(name, v) {
			stale = append(stale, name)
			return nil
		}
		kept++
		return nil
	})
	if err != nil {
		return fmt.Errorf("stored password verifiers: %w", err)
	}
	for _, name := range stale {
		st.DeleteRecord(VerifierNamespace, name)
	}
	if len(stale) > 0 {
		d.log.Info("password verifiers dropped: made with another key or for a replaced password; those users log in once by their hash",
			"count", len(stale), "kept", kept)
	}
	return nil
}

// Close stops the directory's background work: the verifier writes queued so far are handed to
// the store, then later changes of verifiers are no longer persisted. Call it before the store
// is closed. The directory stays usable in memory.
func (d *Directory) Close() {
	if d.writer != nil {
		d.writer.close()
	}
}

// verifierWriter persists verifiers behind the changes that made them, so that a login never
// waits for the store. It keeps the names of users whose verifier changed (a bounded set) and
// writes, for each, the verifier the registry holds at the time of the write, or deletes the
// record when there is none: writes of one name in any order end in the current state. One
// goroutine runs while there is work and exits when the set is empty.
type verifierWriter struct {
	st    store.Records
	users *auth.Users
	log   interface{ Warn(string, ...any) }

	mu      sync.Mutex
	dirty   map[string]struct{}
	running bool
	closed  bool
	dropped int // marks lost at the bound since the last warning
	wg      sync.WaitGroup
}

func newVerifierWriter(st store.Records, users *auth.Users, log interface{ Warn(string, ...any) }) *verifierWriter {
	return &verifierWriter{st: st, users: users, log: log, dirty: make(map[string]struct{})}
}

// mark queues a write of name's verifier; it never blocks.
func (w *verifierWriter) mark(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if _, ok := w.dirty[name]; !ok && len(w.dirty) >= maxDirtyVerifiers {
		w.dropped++
		return
	}
	w.dirty[name] = struct{}{}
	if !w.running {
		w.running = true
		w.wg.Add(1)
		go w.run()
	}
}

func (w *verifierWriter) run() {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		if len(w.dirty) == 0 {
			w.running = false
			dropped := w.dropped
			w.dropped = 0
			w.mu.Unlock()
			if dropped > 0 {
				w.log.Warn("password verifier writes dropped: too many queued; those users log in once by their hash after a restart", "count", dropped)
			}
			return
		}
		batch := w.dirty
		w.dirty = make(map[string]struct{}, len(batch))
		w.mu.Unlock()
		for name := range batch {
			if v, ok := w.users.Verifier(name); ok {
				b, _ := v.MarshalBinary()
				w.st.PutRecord(VerifierNamespace, name, b)
			} else {
				w.st.DeleteRecord(VerifierNamespace, name)
			}
		}
	}
}

// close lets the queued writes finish and refuses later ones.
func (w *verifierWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.wg.Wait()
}
