package ban

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/clock"
	"github.com/turnstilemq/turnstile/internal/expiring"
	"github.com/turnstilemq/turnstile/internal/store"
)

// Namespace is the store.Records namespace of the list.
const Namespace = "bans"

// Defaults of the zero Options fields, and bounds of a ban's fields.
const (
	DefaultDuration   = 365 * 24 * time.Hour // a ban without an Until lasts a year (EMQX's default)
	DefaultMaxEntries = 10_000
	MaxWho            = 65535 // an MQTT client id or user name is at most that long [MQTT-1.5.4]
	MaxReason         = 1024
)

// Kind is what a ban matches, named as in EMQX's banned list.
type Kind string

const (
	ClientID Kind = "clientid"     // a client id, exactly
	Username Kind = "username"     // a user name, exactly (the bare name, without "vhost:")
	PeerHost Kind = "peerhost"     // one source address
	PeerNet  Kind = "peerhost_net" // a CIDR range of source addresses, IPv4 or IPv6
)

// Ban is one entry of the list.
type Ban struct {
	ID     string    `json:"id"`
	As     Kind      `json:"as"`
	Who    string    `json:"who"` // addresses and ranges in canonical form ("10.0.0.0/8", "2001:db8::/32")
	By     string    `json:"by"`  // who added it: the management API's user
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	Until  time.Time `json:"until"` // the ban is in force before Until, and gone from then on
}

// InForce reports whether b applies at instant at.
func (b *Ban) InForce(at time.Time) bool { return at.Before(b.Until) }

// Errors of Add; the API maps them to 400.
var (
	ErrInvalid = errors.New("ban: invalid ban")
	ErrFull    = errors.New("ban: too many bans")
)

// Options configure a List. The zero value is a memory-only list with the defaults.
type Options struct {
	Store      store.Records // nil: memory only
	MaxEntries int           // 0: DefaultMaxEntries
	Clock      clock.Clock
	Logger     *slog.Logger
}

// netBan is a ban on an address range.
type netBan struct {
	p netip.Prefix
	b *Ban
}

// index is the list's secondary indexes, in each snapshot: what Match reads.
type index struct {
	clients map[string]*Ban
	users   map[string]*Ban
	nets    []netBan // peerhost and peerhost_net, in insertion order
}

var _ expiring.Index[Ban, *index] = (*index)(nil)

func newIndex() *index { return &index{clients: map[string]*Ban{}, users: map[string]*Ban{}} }

// Clone implements expiring.Index.
func (x *index) Clone() *index {
	return &index{clients: maps.Clone(x.clients), users: maps.Clone(x.users), nets: slices.Clone(x.nets)}
}

// Add implements expiring.Index.
func (x *index) Add(b *Ban) {
	switch b.As {
	case ClientID:
		x.clients[b.Who] = b
	case Username:
		x.users[b.Who] = b
	case PeerHost, PeerNet:
		p, _ := prefixOf(b.As, b.Who) // validated before
		x.nets = append(x.nets, netBan{p, b})
	}
}

// Remove implements expiring.Index.
func (x *index) Remove(b *Ban) {
	switch b.As {
	case ClientID:
		if x.clients[b.Who] == b {
			delete(x.clients, b.Who)
		}
	case Username:
		if x.users[b.Who] == b {
			delete(x.users, b.Who)
		}
	default:
		x.nets = slices.DeleteFunc(x.nets, func(n netBan) bool { return n.b == b })
	}
}

// existing returns the ban with the same As and Who, if any.
func (x *index) existing(as Kind, who string) *Ban {
	switch as {
	case ClientID:
		return x.clients[who]
	case Username:
		return x.users[who]
	}
	for _, n := range x.nets {
		if n.b.As == as && n.b.Who == who {
			return n.b
		}
	}
	return nil
}

// List is the banned list. It is safe for concurrent use. Its embedded Entries list the bans
// (oldest first), get, count, lift (Delete: connections a ban closed stay closed; the clients it
// matched may connect again) and prune them; the list also prunes by itself when the earliest
// Until passes, and Match ignores expired bans either way.
type List struct {
	expiring.Entries[Ban, *index]
	clk clock.Clock
	set *expiring.Set[Ban, *index]
}

// New returns a list, loaded from o.Store when there is one. Bans already past their Until are
// deleted from the store as they are loaded; a record that cannot be read is logged and left
// alone.
func New(o Options) (*List, error) {
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	set, err := expiring.New(expiring.Options[Ban]{
		Namespace: Namespace,
		Store:     o.Store,
		Max:       o.MaxEntries,
		ErrFull:   ErrFull,
		Clock:     o.Clock,
		Logger:    o.Logger,
		ID:        func(b *Ban) string { return b.ID },
		End:       func(b *Ban) time.Time { return b.Until }, // in force before Until
		Compare:   func(a, b *Ban) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID)) },
		Check:     checkStored,
	}, newIndex())
	if err != nil {
		return nil, fmt.Errorf("ban: %w", err)
	}
	return &List{Entries: set.Entries(), clk: clock.Or(o.Clock), set: set}, nil
}

// checkStored accepts a stored ban only in the canonical form Add writes.
func checkStored(b *Ban) error {
	who, err := normalize(b.As, b.Who)
	if err != nil {
		return err
	}
	if who != b.Who {
		return fmt.Errorf("%w: who: %q is not in canonical form", ErrInvalid, b.Who)
	}
	return nil
}

// prefixOf is the address range a peerhost or peerhost_net ban covers.
func prefixOf(as Kind, who string) (netip.Prefix, error) {
	if as == PeerHost {
		a, err := netip.ParseAddr(who)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	if !strings.Contains(who, "/") { // a single address written without a length
		a, err := netip.ParseAddr(who)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap().WithZone("")
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(who)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 { // ::ffff:10.0.0.0/104 is 10.0.0.0/8
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// normalize checks who for kind as and returns it in canonical form; the error names the field.
func normalize(as Kind, who string) (string, error) {
	switch as {
	case ClientID, Username, PeerHost, PeerNet:
	default:
		return "", fmt.Errorf("%w: as: %q is not clientid, username, peerhost or peerhost_net", ErrInvalid, as)
	}
	switch {
	case who == "":
		return "", fmt.Errorf("%w: who: empty", ErrInvalid)
	case len(who) > MaxWho:
		return "", fmt.Errorf("%w: who: longer than %d bytes", ErrInvalid, MaxWho)
	case !utf8.ValidString(who):
		return "", fmt.Errorf("%w: who: not valid UTF-8", ErrInvalid)
	}
	if as == ClientID || as == Username {
		return who, nil
	}
	p, err := prefixOf(as, who)
	if err != nil {
		want := "an IP address"
		if as == PeerNet {
			want = "a CIDR range such as 10.0.0.0/8 or 2001:db8::/32"
		}
		return "", fmt.Errorf("%w: who: %q is not %s", ErrInvalid, who, want)
	}
	if as == PeerHost {
		return p.Addr().String(), nil
	}
	return p.String(), nil
}

// Add bans b.As b.Who until b.Until (zero: a year from now), for b.Reason, added by b.By. The
// ID and At are set here. Banning what is already banned updates that ban (its Until, Reason and
// By) and keeps its ID: created is false then. It takes effect at once, runs the OnBan hooks,
// then returns once the ban is durable. The error names the field.
func (l *List) Add(b Ban) (_ Ban, created bool, err error) {
	who, err := normalize(b.As, b.Who)
	if err != nil {
		return Ban{}, false, err
	}
	if len(b.Reason) > MaxReason {
		return Ban{}, false, fmt.Errorf("%w: reason: longer than %d bytes", ErrInvalid, MaxReason)
	}
	if len(b.By) > MaxWho {
		return Ban{}, false, fmt.Errorf("%w: by: longer than %d bytes", ErrInvalid, MaxWho)
	}
	now := l.clk.Now()
	until := b.Until
	if until.IsZero() {
		until = now.Add(DefaultDuration)
	}
	if !until.After(now) {
		return Ban{}, false, fmt.Errorf("%w: until: %s has passed", ErrInvalid, until.UTC().Format(time.RFC3339))
	}
	nb := &Ban{As: b.As, Who: who, By: b.By, Reason: b.Reason, At: now.UTC(), Until: until.UTC()}
	return l.set.Add(now,
		func(x *index) *Ban { return x.existing(nb.As, nb.Who) },
		func(_ *Ban, id string) *Ban { nb.ID = id; return nb })
}

// OnBan registers fn to run after each Add, once the ban is in force, outside the list's lock,
// in the goroutine of Add. The broker disconnects the clients the ban matches and suppresses
// their wills.
func (l *List) OnBan(fn func(Ban)) { l.set.OnAdd(fn) }

// Match reports the ban in force at at that matches a client with this client id, user name
// (bare, without "vhost:") and source address; empty values and an invalid address match
// nothing. An IPv4-mapped IPv6 address is its IPv4 address.
func (l *List) Match(clientID, user string, addr netip.Addr, at time.Time) (Ban, bool) {
	snap := l.set.Load()
	if snap.Len() == 0 {
		return Ban{}, false
	}
	x := snap.Index
	if clientID != "" {
		if b := x.clients[clientID]; b != nil && b.InForce(at) {
			return *b, true
		}
	}
	if user != "" {
		if b := x.users[user]; b != nil && b.InForce(at) {
			return *b, true
		}
	}
	if addr.IsValid() && len(x.nets) > 0 {
		addr = addr.Unmap().WithZone("")
		for _, n := range x.nets {
			if n.p.Contains(addr) && n.b.InForce(at) {
				return *n.b, true
			}
		}
	}
	return Ban{}, false
}

// Banned is Match for the broker (broker.Bans): why describes the ban, for the log.
func (l *List) Banned(clientID, user string, addr netip.Addr, at time.Time) (why string, banned bool) {
	b, ok := l.Match(clientID, user, addr, at)
	if !ok {
		return "", false
	}
	return fmt.Sprintf("banned as %s %s until %s (ban %s)", b.As, b.Who, b.Until.Format(time.RFC3339), b.ID), true
}

// Revoked is the broker's Standing check: an identity is not in good standing while a ban
// matches its user name, the client id it connected with or the address it connected from
// (Identity.ClientID and Identity.Remote). reason is "banned".
func (l *List) Revoked(id *auth.Identity, at time.Time) (reason string, revoked bool) {
	if _, ok := l.Match(id.ClientID, id.User, id.Remote, at); ok {
		return "banned", true
	}
	return "", false
}
