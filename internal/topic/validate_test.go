package topic

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		id   string // normative id, or the spec section of an example
		name string
		want error
	}{
		{"MQTT-4.7.3-1 at least one character", "", ErrEmpty},
		{"MQTT-4.7.3-1 one character", "a", nil},
		{"4.7.3 a lone separator is a valid name", "/", nil},
		{"4.7.3 empty levels", "//", nil},
		{"4.7.3 leading separator", "/finance", nil},
		{"4.7.3 trailing separator", "sport/tennis/", nil},
		{"4.7.3 spaces are allowed", "Accounts payable", nil},
		{"4.7.2 $ names are names", "$SYS/monitor/Clients", nil},
		{"MQTT-3.3.2-2 no '+'", "sport/+/player1", ErrWildcardInName},
		{"MQTT-3.3.2-2 no '+' inside a level", "sport+", ErrWildcardInName},
		{"MQTT-3.3.2-2 no '#'", "sport/#", ErrWildcardInName},
		{"MQTT-3.3.2-2 no '#' alone", "#", ErrWildcardInName},
		{"MQTT-4.7.3-2 no U+0000", "a\x00b", ErrNullChar},
		{"MQTT-4.7.3-3 65535 bytes", strings.Repeat("a", 65535), nil},
		{"MQTT-4.7.3-3 not 65536 bytes", strings.Repeat("a", 65536), ErrTooLong},
		{"MQTT-1.5.4-1 ill-formed UTF-8", "a/\xff", ErrInvalidUTF8},
		{"MQTT-1.5.4-1 encoded surrogate", "a/\xed\xa0\x80", ErrInvalidUTF8},
		{"MQTT-1.5.4-1 multi-byte UTF-8", "capteur/température/€", nil},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if err := ValidName(tt.name); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Errorf("[%s] ValidName(%.40q) = %v, want %v", tt.id, tt.name, err, tt.want)
			}
		})
	}
}

func TestValidFilter(t *testing.T) {
	tests := []struct {
		id     string
		filter string
		want   error
	}{
		{"MQTT-4.7.3-1 at least one character", "", ErrEmpty},
		{"MQTT-4.7.1-2 '#' alone", "#", nil},
		{"MQTT-4.7.1-2 '#' after a separator", "sport/tennis/#", nil},
		{"MQTT-4.7.1-2 '#' must follow a separator", "sport/tennis#", ErrMultiLevel},
		{"MQTT-4.7.1-2 '#' must be last", "sport/tennis/#/ranking", ErrMultiLevel},
		{"MQTT-4.7.1-2 '#' only once", "#/#", ErrMultiLevel},
		{"MQTT-4.7.1-2 '#' then a separator", "#/", ErrMultiLevel},
		{"MQTT-4.7.1-2 '#' before text", "#a", ErrMultiLevel},
		{"MQTT-4.7.1-2 '#' after an empty level", "/#", nil},
		{"MQTT-4.7.1-3 '+' alone", "+", nil},
		{"MQTT-4.7.1-3 '+' then '#'", "+/tennis/#", nil},
		{"MQTT-4.7.1-3 '+' in the middle", "sport/+/player1", nil},
		{"MQTT-4.7.1-3 '+' everywhere", "+/+/+", nil},
		{"MQTT-4.7.1-3 '+' around empty levels", "/+/", nil},
		{"MQTT-4.7.1-3 '+' must occupy the level", "sport+", ErrSingleLevel},
		{"MQTT-4.7.1-3 '+' before text", "sport/+a", ErrSingleLevel},
		{"MQTT-4.7.1-3 '+' after text", "a+/b", ErrSingleLevel},
		{"MQTT-4.7.1-3 '++'", "++", ErrSingleLevel},
		{"MQTT-4.7.3-2 no U+0000", "a/\x00/#", ErrNullChar},
		{"MQTT-4.7.3-3 not 65536 bytes", strings.Repeat("a", 65536), ErrTooLong},
		{"MQTT-1.5.4-1 ill-formed UTF-8", "\xc3", ErrInvalidUTF8},
		{"4.7.2 $SYS filters", "$SYS/#", nil},
		{"4.8.2 a $share filter is a filter", "$share/g/a/+", nil},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if err := ValidFilter(tt.filter); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Errorf("[%s] ValidFilter(%.40q) = %v, want %v", tt.id, tt.filter, err, tt.want)
			}
		})
	}
}

func TestParseShared(t *testing.T) {
	tests := []struct {
		id            string
		in            string
		group, filter string
		shared        bool
		want          error
	}{
		{"4.8.2 not shared", "sport/tennis/+", "", "sport/tennis/+", false, nil},
		{"4.8.2 not shared, returned as is", "a/b#", "", "a/b#", false, nil},
		{"4.8.2 prefix needs the slash", "$share", "", "$share", false, nil},
		{"4.8.2 other $ prefix", "$shared/g/a", "", "$shared/g/a", false, nil},
		{"4.8.2 shared", "$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+", true, nil},
		{"4.8.2 shared '#'", "$share/g/#", "g", "#", true, nil},
		{"4.8.2 shared filter with leading separator", "$share/g//finance", "g", "/finance", true, nil},
		{"4.8.2 shared $SYS", "$share/g/$SYS/+", "g", "$SYS/+", true, nil},
		{"MQTT-4.8.2-2 ShareName at least one character", "$share//a", "", "", true, ErrShareName},
		{"MQTT-4.8.2-1 ShareName without '+'", "$share/g+/a", "", "", true, ErrShareName},
		{"MQTT-4.8.2-1 ShareName without '#'", "$share/#/a", "", "", true, ErrShareName},
		{"MQTT-4.8.2-1 ShareName '+' alone", "$share/+/a", "", "", true, ErrShareName},
		{"MQTT-4.8.2-1 followed by '/'", "$share/g", "", "", true, ErrShareNoFilter},
		{"MQTT-4.8.2-1 followed by a filter", "$share/g/", "", "", true, ErrShareNoFilter},
		{"MQTT-4.8.2-1 nothing at all", "$share/", "", "", true, ErrShareNoFilter},
		{"MQTT-4.7.1-2 filter is checked", "$share/g/a#", "", "", true, ErrMultiLevel},
		{"MQTT-4.7.1-3 filter is checked", "$share/g/a/b+", "", "", true, ErrSingleLevel},
		{"MQTT-4.7.3-2 ShareName without U+0000", "$share/g\x00/a", "", "", true, ErrNullChar},
		{"MQTT-4.7.3-3 length", "$share/g/" + strings.Repeat("a", 65535), "", "", true, ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			g, f, shared, err := ParseShared(tt.in)
			if g != tt.group || f != tt.filter || shared != tt.shared || !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Errorf("[%s] ParseShared(%.40q) = %q, %.40q, %v, %v; want %q, %.40q, %v, %v",
					tt.id, tt.in, g, f, shared, err, tt.group, tt.filter, tt.shared, tt.want)
			}
		})
	}
}

// matchTests are the spec's examples (v3.1.1 §4.7, v5.0 §4.7) and a few more.
// Index and Retained are tested against the same table.
var matchTests = []struct {
	id           string
	filter, name string
	want         bool
}{
	// §4.7.1.2 multi-level wildcard, [MQTT-4.7.1-2].
	{"MQTT-4.7.1-2 example: parent level", "sport/tennis/player1/#", "sport/tennis/player1", true},
	{"MQTT-4.7.1-2 example: one level below", "sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"MQTT-4.7.1-2 example: two levels below", "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"MQTT-4.7.1-2 example: sibling", "sport/tennis/player1/#", "sport/tennis/player2", false},
	{"MQTT-4.7.1-2 example: sport/# matches sport", "sport/#", "sport", true},
	{"MQTT-4.7.1-2 sport/# matches sport/", "sport/#", "sport/", true},
	{"MQTT-4.7.1-2 sport/# not sports", "sport/#", "sports", false},
	{"MQTT-4.7.1-2 # matches everything", "#", "sport/tennis/player1", true},
	{"MQTT-4.7.1-2 # matches /", "#", "/", true},
	{"MQTT-4.7.1-2 # matches /finance", "#", "/finance", true},
	{"MQTT-4.7.1-2 /# matches /finance", "/#", "/finance", true},
	{"MQTT-4.7.1-2 /# not finance", "/#", "finance", false},
	{"MQTT-4.7.1-2 a/b/# not a", "a/b/#", "a", false},
	// §4.7.1.3 single-level wildcard, [MQTT-4.7.1-3].
	{"MQTT-4.7.1-3 example: sport/tennis/+ player1", "sport/tennis/+", "sport/tennis/player1", true},
	{"MQTT-4.7.1-3 example: sport/tennis/+ player2", "sport/tennis/+", "sport/tennis/player2", true},
	{"MQTT-4.7.1-3 example: sport/tennis/+ not a level deeper", "sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"MQTT-4.7.1-3 example: sport/+ not sport", "sport/+", "sport", false},
	{"MQTT-4.7.1-3 example: sport/+ matches sport/", "sport/+", "sport/", true},
	{"MQTT-4.7.1-3 example: + matches an empty level, +/+", "+/+", "/finance", true},
	{"MQTT-4.7.1-3 example: /+ matches /finance", "/+", "/finance", true},
	{"MQTT-4.7.1-3 example: + not /finance", "+", "/finance", false},
	{"MQTT-4.7.1-3 + matches finance", "+", "finance", true},
	{"MQTT-4.7.1-3 + not finance/", "+", "finance/", false},
	{"MQTT-4.7.1-3 +/+ matches finance/", "+/+", "finance/", true},
	{"MQTT-4.7.1-3 +/+ matches /", "+/+", "/", true},
	{"MQTT-4.7.1-3 sport/+/player1", "sport/+/player1", "sport/tennis/player1", true},
	{"MQTT-4.7.1-3 sport/+/player1 not player2", "sport/+/player1", "sport/tennis/player2", false},
	{"MQTT-4.7.1-3 +/tennis/#", "+/tennis/#", "sport/tennis/player1/ranking", true},
	{"MQTT-4.7.1-3 +/tennis/# parent", "+/tennis/#", "sport/tennis", true},
	{"MQTT-4.7.1-3 +/# matches a single level", "+/#", "sport", true},
	{"MQTT-4.7.1-3 +/+ not one level", "+/+", "sport", false},
	// §4.7.2 topics beginning with $, [MQTT-4.7.2-1].
	{"MQTT-4.7.2-1 # does not match $SYS", "#", "$SYS/monitor/Clients", false},
	{"MQTT-4.7.2-1 # does not match $SYS alone", "#", "$SYS", false},
	{"MQTT-4.7.2-1 +/monitor/Clients does not match $SYS", "+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"MQTT-4.7.2-1 + does not match $", "+", "$", false},
	{"MQTT-4.7.2-1 +/# does not match $SYS", "+/#", "$SYS/x", false},
	{"MQTT-4.7.2-1 $SYS/# matches", "$SYS/#", "$SYS/monitor/Clients", true},
	{"MQTT-4.7.2-1 $SYS/monitor/+ matches", "$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"MQTT-4.7.2-1 only the first level: a/+ matches a/$b", "a/+", "a/$b", true},
	{"MQTT-4.7.2-1 only the first level: # matches a/$b", "#", "a/$b", true},
	{"MQTT-4.7.2-1 only a leading $: # matches a$", "#", "a$", true},
	// §4.7.3 literal comparison.
	{"4.7.3 case sensitive", "ACCOUNTS", "Accounts", false},
	{"4.7.3 spaces", "Accounts payable", "Accounts payable", true},
	{"4.7.3 trailing separator is a level", "sport/tennis", "sport/tennis/", false},
	{"4.7.3 leading separator is a level", "/finance", "finance", false},
	{"4.7.3 exact", "/finance", "/finance", true},
	{"4.7.3 / matches /", "/", "/", true},
	{"4.7.3 // not /", "//", "/", false},
	{"4.7.3 prefix is not a match", "sport/ten", "sport/tennis", false},
	{"4.7.3 longer filter", "sport/tennis/x", "sport/tennis", false},
	{"4.7.3 UTF-8", "capteur/+/€", "capteur/température/€", true},
}

func TestMatch(t *testing.T) {
	for _, tt := range matchTests {
		t.Run(tt.id, func(t *testing.T) {
			if got := Match(tt.filter, tt.name); got != tt.want {
				t.Errorf("[%s] Match(%q, %q) = %v, want %v", tt.id, tt.filter, tt.name, got, tt.want)
			}
		})
	}
	// Empty inputs never match [MQTT-4.7.3-1].
	if Match("", "a") || Match("#", "") || Match("", "") {
		t.Error("[MQTT-4.7.3-1] an empty filter or name must not match")
	}
}

func TestMatchTableIsValid(t *testing.T) {
	for _, tt := range matchTests {
		if err := ValidFilter(tt.filter); err != nil {
			t.Errorf("%s: filter %q: %v", tt.id, tt.filter, err)
		}
		if err := ValidName(tt.name); err != nil {
			t.Errorf("%s: name %q: %v", tt.id, tt.name, err)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(1000, func() {
		for _, tt := range matchTests {
			Match(tt.filter, tt.name)
		}
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times per run, want 0", allocs)
	}
}
