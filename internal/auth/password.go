package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Hashing algorithm names as stored with a user and written to definitions files. The RabbitMQ
// names import into RabbitMQ and LavinMQ unchanged; AlgBcrypt is LavinMQ's name for bcrypt, so
// users created here import into LavinMQ too. On input, names are matched by case-insensitive
// suffix (see [VerifyPassword]).
const (
	AlgBcrypt   = "lavinmq_bcrypt"
	AlgArgon2id = "argon2id"
	AlgSHA256   = "rabbit_password_hashing_sha256"
	AlgSHA512   = "rabbit_password_hashing_sha512"
	AlgMD5      = "rabbit_password_hashing_md5"
)

// Cost defaults and limits.
const (
	// DefaultBcryptCost is the bcrypt cost of new passwords (Go's bcrypt.DefaultCost; LavinMQ
	// uses 4).
	DefaultBcryptCost = bcrypt.DefaultCost
	// MaxBcryptCost bounds the cost of a stored bcrypt hash: an imported hash at cost 31 would
	// take days to check and is refused as invalid.
	MaxBcryptCost = 16

	maxArgon2MemoryKiB = 1 << 20 // 1 GiB: above this a stored hash is refused as invalid
	maxArgon2Time      = 64
	maxArgon2KeyLen    = 1024
	maxArgon2SaltLen   = 1024
)

// ErrInvalidPasswordHash reports a stored hash that cannot be parsed (LavinMQ's
// InvalidPasswordHash). Its message names the field, never the value.
var ErrInvalidPasswordHash = errors.New("invalid password_hash")

// errPasswordTooLong: bcrypt reads only the first 72 bytes of a password.
var errPasswordTooLong = errors.New("auth: password longer than 72 bytes cannot be hashed with bcrypt")

// Argon2Params are the argon2id cost parameters of new passwords.
type Argon2Params struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32
	Threads   uint8
	SaltLen   uint32 // bytes
	KeyLen    uint32 // bytes
}

// DefaultArgon2Params are OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane): memory-hard
// enough for passwords, small enough that a reconnect storm does not exhaust the host.
var DefaultArgon2Params = Argon2Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1, SaltLen: 16, KeyLen: 32}

// Hasher hashes new passwords. The zero value hashes with bcrypt at DefaultBcryptCost.
type Hasher struct {
	// Algorithm is "" or a name ending in "bcrypt" (bcrypt), or one ending in "argon2id".
	// The RabbitMQ salted digests are for import only and are refused here.
	Algorithm  string
	BcryptCost int          // 0: DefaultBcryptCost; tests use bcrypt.MinCost
	Argon2     Argon2Params // zero: DefaultArgon2Params
}

// HashPassword hashes pw for a new user with alg ("" for bcrypt) at the default cost. It
// returns the algorithm name to store beside the hash.
func HashPassword(pw []byte, alg string) (algorithm, hash string, err error) {
	return Hasher{Algorithm: alg}.Hash(pw)
}

// Hash hashes pw with h's algorithm and cost, returning the algorithm name to store and the hash.
func (h Hasher) Hash(pw []byte) (algorithm, hash string, err error) {
	if len(pw) == 0 {
		return "", "", errors.New("auth: empty password: store an empty password_hash for a user who cannot log in with one")
	}
	kind, cost, p, err := h.settings()
	if err != nil {
		return "", "", err
	}
	switch kind {
	case kindBcrypt:
		if len(pw) > 72 {
			return "", "", errPasswordTooLong
		}
		b, err := bcrypt.GenerateFromPassword(pw, cost)
		if err != nil {
			return "", "", fmt.Errorf("auth: bcrypt: %w", err)
		}
		return AlgBcrypt, string(b), nil
	default: // kindArgon2id
		salt := make([]byte, p.SaltLen)
		if _, err := rand.Read(salt); err != nil {
			return "", "", fmt.Errorf("auth: salt: %w", err)
		}
		key := argon2.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
		return AlgArgon2id, encodeArgon2id(p, salt, key), nil
	}
}

// Validate reports what Hash would refuse about h itself, whatever the password: an unknown or
// import-only algorithm, a bcrypt cost or argon2id parameters out of range. It hashes nothing.
func (h Hasher) Validate() error {
	_, _, _, err := h.settings()
	return err
}

// settings resolves h's algorithm and the cost or parameters Hash uses, defaults filled in.
func (h Hasher) settings() (kind hashKind, cost int, p Argon2Params, err error) {
	kind = kindBcrypt
	if h.Algorithm != "" {
		if kind, err = algKind(h.Algorithm); err != nil {
			return 0, 0, p, err
		}
	}
	switch kind {
	case kindBcrypt:
		cost = h.BcryptCost
		if cost == 0 {
			cost = DefaultBcryptCost
		}
		if cost < bcrypt.MinCost || cost > MaxBcryptCost {
			return 0, 0, p, fmt.Errorf("auth: bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, MaxBcryptCost)
		}
	case kindArgon2id:
		p = h.Argon2
		if p == (Argon2Params{}) {
			p = DefaultArgon2Params
		}
		if err := p.check(); err != nil {
			return 0, 0, p, err
		}
	default:
		return 0, 0, p, fmt.Errorf("auth: hashing_algorithm %q is for imported users only; new passwords use bcrypt or argon2id", h.Algorithm)
	}
	return kind, cost, p, nil
}

func (p Argon2Params) check() error {
	switch {
	case p.Threads < 1:
		return errors.New("auth: argon2id threads must be at least 1")
	case p.Time < 1 || p.Time > maxArgon2Time:
		return fmt.Errorf("auth: argon2id time %d outside 1..%d", p.Time, maxArgon2Time)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxArgon2MemoryKiB:
		return fmt.Errorf("auth: argon2id memory %d KiB outside %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxArgon2MemoryKiB)
	case p.SaltLen < 8 || p.SaltLen > maxArgon2SaltLen:
		return fmt.Errorf("auth: argon2id salt length %d outside 8..%d", p.SaltLen, maxArgon2SaltLen)
	case p.KeyLen < 16 || p.KeyLen > maxArgon2KeyLen:
		return fmt.Errorf("auth: argon2id key length %d outside 16..%d", p.KeyLen, maxArgon2KeyLen)
	}
	return nil
}

// encodeArgon2id writes the PHC string format of the reference implementation:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>, both in unpadded standard base64.
func encodeArgon2id(p Argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// VerifyPassword reports whether pw matches hash, stored with algorithm alg.
//
// The algorithm is chosen by case-insensitive suffix, as LavinMQ does: "sha256", "sha512", "md5"
// (RabbitMQ's salted digests, base64(salt ‖ H(salt ‖ password)), where the salt is whatever
// precedes the final digest and a legacy "$5$", "$6$" or "$1$" prefix of the matching algorithm is
// stripped), "bcrypt" and "argon2id" (PHC string). An empty alg means MD5, RabbitMQ's assumption
// for a definitions entry without hashing_algorithm, unless the hash itself is a bcrypt or argon2id
// string. Importers that assume otherwise (LavinMQ's API assumes SHA-256) resolve the name first
// with [ImportHash].
//
// An empty hash never verifies: (false, nil). A hash that cannot be parsed is an error wrapping
// ErrInvalidPasswordHash; its message names the field, never the value. Digests are compared in
// constant time.
func VerifyPassword(alg, hash string, pw []byte) (bool, error) {
	if hash == "" {
		return false, nil
	}
	kind, err := verifyKind(alg, hash)
	if err != nil {
		return false, err
	}
	switch kind {
	case kindBcrypt:
		if err := checkBcrypt(hash); err != nil {
			return false, err
		}
		switch err := bcrypt.CompareHashAndPassword([]byte(hash), pw); {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, nil
		default: // bcrypt's own messages may quote part of the hash: do not wrap them
			return false, fmt.Errorf("auth: %w: not a valid bcrypt hash", ErrInvalidPasswordHash)
		}
	case kindArgon2id:
		p, salt, key, err := decodeArgon2id(hash)
		if err != nil {
			return false, err
		}
		got := argon2.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
		return subtle.ConstantTimeCompare(got, key) == 1, nil
	default:
		salt, digest, err := decodeSalted(kind, hash)
		if err != nil {
			return false, err
		}
		h := kind.newHash()
		h.Write(salt)
		h.Write(pw)
		return subtle.ConstantTimeCompare(h.Sum(nil), digest) == 1, nil
	}
}

// ImportHash checks a hash that arrives from a definitions file or the management API and
// returns the canonical algorithm name to store with it. When alg is empty, a bcrypt or argon2id
// string is recognised by its prefix, and anything else takes defaultAlg: AlgMD5 for RabbitMQ
// definitions files, AlgSHA256 for LavinMQ's PUT /api/users. An empty hash is accepted (a user
// who cannot log in with a password).
func ImportHash(alg, hash, defaultAlg string) (algorithm string, err error) {
	if _, ok := shapeKind(hash); alg == "" && !ok {
		alg = defaultAlg
	}
	kind, err := verifyKind(alg, hash)
	if err != nil {
		return "", err
	}
	if hash != "" {
		switch kind {
		case kindBcrypt:
			err = checkBcrypt(hash)
		case kindArgon2id:
			_, _, _, err = decodeArgon2id(hash)
		default:
			_, _, err = decodeSalted(kind, hash)
		}
		if err != nil {
			return "", err
		}
	}
	return kind.canonical(), nil
}

// algorithm kinds
type hashKind int

const (
	kindMD5 hashKind = iota
	kindSHA256
	kindSHA512
	kindBcrypt
	kindArgon2id
)

func (k hashKind) canonical() string {
	return [...]string{AlgMD5, AlgSHA256, AlgSHA512, AlgBcrypt, AlgArgon2id}[k]
}

func (k hashKind) newHash() hash.Hash {
	switch k {
	case kindSHA256:
		return sha256.New()
	case kindSHA512:
		return sha512.New()
	default:
		return md5.New()
	}
}

func (k hashKind) digestSize() int { return [...]int{md5.Size, sha256.Size, sha512.Size}[k] }

// legacyPrefix is the crypt(3)-style prefix early LavinMQ versions wrote before the base64.
func (k hashKind) legacyPrefix() string { return [...]string{"$1$", "$5$", "$6$"}[k] }

// algKind resolves an algorithm name by case-insensitive suffix; "" resolves to MD5.
func algKind(alg string) (hashKind, error) {
	a := strings.ToLower(alg)
	switch {
	case a == "" || strings.HasSuffix(a, "md5"):
		return kindMD5, nil
	case strings.HasSuffix(a, "sha256"):
		return kindSHA256, nil
	case strings.HasSuffix(a, "sha512"):
		return kindSHA512, nil
	case strings.HasSuffix(a, "bcrypt"):
		return kindBcrypt, nil
	case strings.HasSuffix(a, "argon2id"):
		return kindArgon2id, nil
	}
	if len(alg) > 64 {
		alg = alg[:64]
	}
	return 0, fmt.Errorf("auth: unsupported hashing_algorithm %q", alg)
}

// verifyKind is algKind, except that an empty algorithm with a bcrypt or argon2id string is that.
func verifyKind(alg, hash string) (hashKind, error) {
	if k, ok := shapeKind(hash); ok && alg == "" {
		return k, nil
	}
	return algKind(alg)
}

// shapeKind recognises a bcrypt or argon2id string by its prefix. Neither can be mistaken for a
// salted digest: "$" is not a base64 character.
func shapeKind(hash string) (hashKind, bool) {
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		return kindBcrypt, true
	case strings.HasPrefix(hash, "$argon2id$"):
		return kindArgon2id, true
	}
	return 0, false
}

// checkBcrypt parses a bcrypt string and bounds its cost before any work is spent on it.
func checkBcrypt(hash string) error {
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return fmt.Errorf("auth: %w: not a valid bcrypt hash", ErrInvalidPasswordHash)
	}
	if cost > MaxBcryptCost {
		return fmt.Errorf("auth: %w: bcrypt cost %d above %d", ErrInvalidPasswordHash, cost, MaxBcryptCost)
	}
	return nil
}

// decodeSalted splits base64(salt ‖ digest) of a RabbitMQ salted digest.
func decodeSalted(kind hashKind, hash string) (salt, digest []byte, err error) {
	hash = strings.TrimPrefix(hash, kind.legacyPrefix())
	raw, err := base64.StdEncoding.DecodeString(hash)
	if err != nil {
		// Crystal's Base64.decode (LavinMQ) also accepts unpadded input.
		if raw, err = base64.RawStdEncoding.DecodeString(hash); err != nil {
			return nil, nil, fmt.Errorf("auth: %w: not valid base64", ErrInvalidPasswordHash)
		}
	}
	n := kind.digestSize()
	if len(raw) < n {
		return nil, nil, fmt.Errorf("auth: %w: decoded %d bytes, shorter than the %d-byte %s digest",
			ErrInvalidPasswordHash, len(raw), n, kind.canonical())
	}
	return raw[:len(raw)-n], raw[len(raw)-n:], nil
}

// decodeArgon2id parses $argon2id$v=19$m=..,t=..,p=..$salt$key, bounding every parameter before
// anything is allocated from it.
func decodeArgon2id(hash string) (p Argon2Params, salt, key []byte, err error) {
	bad := func(what string) (Argon2Params, []byte, []byte, error) {
		return Argon2Params{}, nil, nil, fmt.Errorf("auth: %w: argon2id %s", ErrInvalidPasswordHash, what)
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return bad("is not $argon2id$v=19$m=..,t=..,p=..$salt$hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("version is not 19")
	}
	var mtp [3]uint64 // m, t, p in this order
	fields := strings.Split(parts[3], ",")
	if len(fields) != len(mtp) {
		return bad("parameters are not m=..,t=..,p=..")
	}
	for i, kv := range fields {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name != "mtp"[i:i+1] {
			return bad("parameters are not m=..,t=..,p=..")
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil {
			return bad("parameter " + name + " is not a number")
		}
		mtp[i] = n
	}
	m, t, par := mtp[0], mtp[1], mtp[2]
	if len(parts[4]) > base64.RawStdEncoding.EncodedLen(maxArgon2SaltLen) ||
		len(parts[5]) > base64.RawStdEncoding.EncodedLen(maxArgon2KeyLen) {
		return bad("salt or hash too long")
	}
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return bad("salt is not valid base64")
	}
	if key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil {
		return bad("hash is not valid base64")
	}
	if par > 255 {
		return bad("parameters out of range")
	}
	p = Argon2Params{Time: uint32(t), MemoryKiB: uint32(m), Threads: uint8(par), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	if err := p.check(); err != nil {
		return bad("parameters out of range")
	}
	return p, salt, key, nil
}
