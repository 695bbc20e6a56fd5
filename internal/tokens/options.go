package tokens

import (
	"log/slog"
	"time"

	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/store"
)

// Defaults of Options.
const (
	DefaultTimestampWindow = 5 * time.Minute     // tokens.md §3
	DefaultMaxLifetime     = 30 * 24 * time.Hour // tokens.md §2: ExpireTime at most 30 days ahead
	DefaultMinLifetime     = 60 * time.Second    // tokens.md §2: ExpireTime at least now + 60 s
	DefaultApplyRate       = 100                 // per second per AccessKey (Alibaba's figure)
	DefaultQueryRate       = 100
	DefaultRevokeRate      = 5
	DefaultMaxAccessKeys   = 10000
	DefaultMaxRevocations  = 1 << 20
	DefaultMaxNoncesPerKey = 1 << 17 // above 205 requests/s held for twice the window
	DefaultMaxNonces       = 1 << 20
	DefaultMaxBodyBytes    = 64 << 10
	MaxResources           = 100     // tokens.md §2
	MaxTokenBytes          = 7168    // a token must fit the 8 KiB upload payload
	MaxUploadBytes         = 8 << 10 // will-and-expiry.md §4: $SYS/uploadToken payload cap
)

// Options configure a Service. The zero value of every field but Owners and MasterKey picks the
// default.
type Options struct {
	Clock  clock.Clock  // nil: the system clock
	Logger *slog.Logger // nil: slog.Default()
	// Store persists signing keys, AccessKeys and revocations (namespaces "tokens.keys",
	// "tokens.accesskeys", "tokens.revoked"); nil keeps them in memory only.
	Store store.Records
	// MasterKey (32 bytes, see LoadOrCreateMasterKey) encrypts signing keys and AccessKey
	// secrets in the store. Required.
	MasterKey []byte
	// Owners judges the owners of AccessKeys. Required.
	Owners Owners
	// Revoker holds revoked token ids; nil: an in-memory set persisted in Store.
	Revoker Revoker

	TimestampWindow time.Duration // ±window around the server clock for Timestamp; 0: 5 min
	MaxLifetime     time.Duration // longest token; 0: 30 days
	// RejectLongExpiry refuses an ExpireTime beyond MaxLifetime (ParameterCheckFailed) instead
	// of capping it (Alibaba's behaviour, the default), which the response then notes.
	RejectLongExpiry bool
	// Leeway is allowed after a token's exp when it is verified; 0: none.
	Leeway time.Duration

	ApplyRate, QueryRate, RevokeRate float64 // requests per second per AccessKey; 0: default, <0: unlimited

	MaxAccessKeys   int // 0: default
	MaxRevocations  int // 0: default
	MaxNoncesPerKey int // 0: default
	MaxNonces       int // 0: default
	MaxBodyBytes    int64

	// Legacy serves the legacy form API at /token/apply, /token/query and /token/revoke. It has
	// neither timestamp nor nonce, so a captured request can be replayed: off by default.
	Legacy bool
}

func (o *Options) defaults() {
	o.Clock = clock.Or(o.Clock)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.TimestampWindow <= 0 {
		o.TimestampWindow = DefaultTimestampWindow
	}
	if o.MaxLifetime <= 0 {
		o.MaxLifetime = DefaultMaxLifetime
	}
	if o.ApplyRate == 0 {
		o.ApplyRate = DefaultApplyRate
	}
	if o.QueryRate == 0 {
		o.QueryRate = DefaultQueryRate
	}
	if o.RevokeRate == 0 {
		o.RevokeRate = DefaultRevokeRate
	}
	if o.MaxAccessKeys <= 0 {
		o.MaxAccessKeys = DefaultMaxAccessKeys
	}
	if o.MaxRevocations <= 0 {
		o.MaxRevocations = DefaultMaxRevocations
	}
	if o.MaxNoncesPerKey <= 0 {
		o.MaxNoncesPerKey = DefaultMaxNoncesPerKey
	}
	if o.MaxNonces <= 0 {
		o.MaxNonces = DefaultMaxNonces
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
}
