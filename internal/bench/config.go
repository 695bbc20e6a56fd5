package bench

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Scenario names a traffic shape.
type Scenario string

// The scenarios. Topics are <prefix>/<index>; see Config.Topic.
const (
	// Conn opens Clients connections (Concurrency at a time), reports the connect rate and the
	// CONNECT→CONNACK latency, holds them idle for Duration and checks that each is still alive.
	Conn Scenario = "conn"
	// Pub runs Clients publishers on <prefix>/<i> and nothing else. With QoS 1 or 2 the latency is
	// the PUBLISH→PUBACK (or PUBCOMP) round trip.
	Pub Scenario = "pub"
	// Sub runs Clients subscribers on <prefix>/# that receive what others publish (for instance a
	// `pub` run in another process) for Duration. Loss comes from sequence gaps; latency is exact
	// only when the publisher runs on the same host.
	Sub Scenario = "sub"
	// FanIn runs Clients publishers on <prefix>/<i> and one subscriber on <prefix>/+.
	FanIn Scenario = "fanin"
	// FanOut runs one publisher on <prefix>/0 and Clients subscribers on that topic.
	FanOut Scenario = "fanout"
	// Pairs runs Clients publisher/subscriber pairs, pair i on <prefix>/<i>.
	Pairs Scenario = "pairs"
	// Offline is pairs with persistent subscribers that subscribe and disconnect: the
	// publishers fill their offline queues for Duration, then the subscribers come back and the
	// report gives how fast the broker drains the queues to them (drain_per_s).
	Offline Scenario = "offline"
)

// Scenarios lists every scenario in the order of the help text.
var Scenarios = []Scenario{Conn, Pub, Sub, FanIn, FanOut, Pairs, Offline}

// MinSize is the smallest payload: the send time, the publisher index and the sequence number.
const MinSize = 16

// Config is one bench run.
type Config struct {
	Scenario Scenario
	Clients  int           // publishers, subscribers, pairs or connections, per the scenario
	QoS      byte          // of the PUBLISH packets and of the subscriptions
	Size     int           // payload bytes, at least MinSize
	Topic    string        // topic prefix
	Duration time.Duration // how long publishers publish (or conn holds, or sub listens)
	Rate     float64       // messages per second per publisher; 0 = as fast as the broker takes them
	Inflight int           // unacknowledged QoS 1/2 PUBLISH packets per publisher
	Drain    time.Duration // how long to wait for deliveries after publishing stops

	Host     string
	Port     int
	Username string
	Password string
	// Users, when above 0, makes connection i log in as user i mod Users: "{i}" in Username and
	// Password is replaced by that number, and a Username without "{i}" gets it appended
	// (--users 10000 --username u --password 'p{i}': u0/p0 … u9999/p9999).
	Users int
	// Credentials names a file of "user name<TAB>password" lines (# comments); connection i logs
	// in with line i mod their number: tokens, JWTs, any mix of logins.
	Credentials string
	TLS         bool
	CAFile      string // PEM roots for TLS; the system roots when empty
	Insecure    bool   // skip TLS certificate verification
	Version     byte   // MQTT protocol level: 3 (3.1), 4 (3.1.1) or 5 (5.0)
	Concurrency int    // connections being opened at the same time
	// Persistent subscribers keep their session: clean session 0 (3.1.1) or Clean Start 0 with
	// a Session Expiry Interval of an hour (5.0). The offline scenario always uses it.
	Persistent bool
	// Filter, when set, is the filter every subscriber subscribes to instead of the scenario's
	// (fanout with a wildcard filter, say, to exercise a per-message read check).
	Filter string
}

// DefaultConfig returns the defaults of `turnstile bench`.
func DefaultConfig() Config {
	return Config{
		Scenario:    Pairs,
		Clients:     8,
		QoS:         0,
		Size:        64,
		Topic:       "bench",
		Duration:    10 * time.Second,
		Inflight:    100,
		Drain:       2 * time.Second,
		Host:        "127.0.0.1",
		Port:        1883,
		Version:     4,
		Concurrency: 32,
	}
}

// Validate reports every problem with c, joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !slices.Contains(Scenarios, c.Scenario) {
		names := make([]string, len(Scenarios))
		for i, s := range Scenarios {
			names[i] = string(s)
		}
		bad("scenario %q is not one of %s", c.Scenario, strings.Join(names, ", "))
	}
	if c.Clients < 1 {
		bad("clients %d: at least 1", c.Clients)
	}
	if c.QoS > 2 {
		bad("qos %d: 0, 1 or 2", c.QoS)
	}
	if c.Size < MinSize || c.Size > 256<<20 {
		bad("size %d: %d to %d bytes (the payload holds a timestamp and a sequence number)", c.Size, MinSize, 256<<20)
	}
	if c.Topic == "" || strings.ContainsAny(c.Topic, "+#\x00") {
		bad("topic %q: a non-empty topic name without wildcards", c.Topic)
	}
	if c.Duration <= 0 {
		bad("duration %v: must be positive", c.Duration)
	}
	if c.Rate < 0 {
		bad("rate %v: 0 (unlimited) or more", c.Rate)
	}
	if c.Inflight < 1 || c.Inflight > 32767 {
		bad("inflight %d: 1 to 32767", c.Inflight)
	}
	if c.Drain < 0 {
		bad("drain %v: 0 or more", c.Drain)
	}
	if c.Host == "" {
		bad("host: empty")
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("port %d: 1 to 65535", c.Port)
	}
	if c.Version < 3 || c.Version > 5 {
		bad("mqtt-version %d: 3, 4 or 5", c.Version)
	}
	if c.Concurrency < 1 {
		bad("concurrency %d: at least 1", c.Concurrency)
	}
	if c.Users < 0 {
		bad("users %d: 0 (one login for every connection) or more", c.Users)
	}
	if c.Users > 0 && c.Credentials != "" {
		bad("users and credentials: give one of them")
	}
	if !c.TLS && (c.CAFile != "" || c.Insecure) {
		bad("cafile and insecure need --tls")
	}
	return errors.Join(errs...)
}

// publishers and subscribers are the client counts of each role in c's scenario.
func (c *Config) publishers() int {
	switch c.Scenario {
	case Pub, FanIn, Pairs, Offline:
		return c.Clients
	case FanOut:
		return 1
	}
	return 0
}

// connections is how many connections the run opens.
func (c *Config) connections() int {
	if c.Scenario == Conn {
		return c.Clients
	}
	return c.publishers() + c.subscribers()
}

func (c *Config) subscribers() int {
	switch c.Scenario {
	case Sub, FanOut, Pairs, Offline:
		return c.Clients
	case FanIn:
		return 1
	}
	return 0
}

// pubTopic is the topic publisher i publishes to.
func (c *Config) pubTopic(i int) string {
	if c.Scenario == FanOut {
		return c.Topic + "/0"
	}
	return fmt.Sprintf("%s/%d", c.Topic, i)
}

// subFilter is the filter subscriber i subscribes to.
func (c *Config) subFilter(i int) string {
	if c.Filter != "" {
		return c.Filter
	}
	switch c.Scenario {
	case FanIn:
		return c.Topic + "/+"
	case FanOut:
		return c.Topic + "/0"
	case Pairs, Offline:
		return fmt.Sprintf("%s/%d", c.Topic, i)
	}
	return c.Topic + "/#"
}

// receiversPerMessage is how many subscribers each published message should reach; 0 when the
// scenario has no subscribers of its own.
func (c *Config) receiversPerMessage() int {
	switch c.Scenario {
	case FanIn, Pairs, Offline:
		return 1
	case FanOut:
		return c.Clients
	}
	return 0
}
