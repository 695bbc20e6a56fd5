package topic

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest topic name or filter, in bytes: a UTF-8 Encoded String
// carries a two-byte length [MQTT-4.7.3-3].
const MaxLen = 65535

// SharePrefix starts a shared subscription's filter (MQTT 5.0 §4.8.2).
const SharePrefix = "$share/"

// Errors returned by ValidName, ValidFilter and ParseShared. ParseShared wraps
// the filter errors, so test them with errors.Is.
var (
	ErrEmpty          = errors.New("topic: empty topic name or filter")                                              // [MQTT-4.7.3-1]
	ErrTooLong        = errors.New("topic: topic name or filter longer than 65535 bytes")                            // [MQTT-4.7.3-3]
	ErrNullChar       = errors.New("topic: topic name or filter contains U+0000")                                    // [MQTT-4.7.3-2]
	ErrInvalidUTF8    = errors.New("topic: topic name or filter is not well-formed UTF-8")                           // [MQTT-1.5.4-1]
	ErrWildcardInName = errors.New("topic: topic name contains a wildcard '+' or '#'")                               // [MQTT-3.3.2-2]
	ErrMultiLevel     = errors.New("topic: '#' in a filter must be alone in the last level")                         // [MQTT-4.7.1-2]
	ErrSingleLevel    = errors.New("topic: '+' in a filter must occupy a whole level")                               // [MQTT-4.7.1-3]
	ErrShareName      = errors.New("topic: shared subscription ShareName is empty or contains '/', '+' or '#'")      // [MQTT-4.8.2-1], [MQTT-4.8.2-2]
	ErrShareNoFilter  = errors.New("topic: shared subscription ShareName is not followed by '/' and a topic filter") // [MQTT-4.8.2-1]
)

// checkCommon applies the rules shared by names and filters.
func checkCommon(s string) error {
	if s == "" {
		return ErrEmpty // [MQTT-4.7.3-1]
	}
	if len(s) > MaxLen {
		return ErrTooLong // [MQTT-4.7.3-3]
	}
	if strings.IndexByte(s, 0) >= 0 {
		return ErrNullChar // [MQTT-4.7.3-2]
	}
	if !utf8.ValidString(s) {
		return ErrInvalidUTF8 // [MQTT-1.5.4-1]: also rejects U+D800..U+DFFF
	}
	return nil
}

// ValidName reports whether s is a valid topic name for PUBLISH (and for a
// Will Topic): at least one character [MQTT-4.7.3-1], no '+' or '#'
// [MQTT-3.3.2-2] ([MQTT-4.7.1-1] in v3.1.1, [MQTT-4.7.0-1] in v5.0), no U+0000
// [MQTT-4.7.3-2], well-formed UTF-8 [MQTT-1.5.4-1], at most 65535 bytes
// [MQTT-4.7.3-3]. The error names the rule that failed.
//
// Names starting with '$' are valid here; whether a client may publish to
// them is a broker policy, not a syntax rule.
func ValidName(s string) error {
	if err := checkCommon(s); err != nil {
		return err
	}
	if strings.ContainsAny(s, "+#") {
		return ErrWildcardInName // [MQTT-3.3.2-2]
	}
	return nil
}

// ValidFilter reports whether s is a valid topic filter for SUBSCRIBE and
// UNSUBSCRIBE: at least one character [MQTT-4.7.3-1]; '#' only alone as the
// last level [MQTT-4.7.1-2]; '+' alone in its level [MQTT-4.7.1-3]; no U+0000
// [MQTT-4.7.3-2]; well-formed UTF-8 [MQTT-1.5.4-1]; at most 65535 bytes
// [MQTT-4.7.3-3].
//
// s is the filter as a whole: a "$share/..." filter is valid here when the
// rest is (the ShareName is a level), but call ParseShared to check the
// shared-subscription rules.
func ValidFilter(s string) error {
	if err := checkCommon(s); err != nil {
		return err
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '#':
			// [MQTT-4.7.1-2] on its own or after '/', and the last character.
			if (i > 0 && s[i-1] != '/') || i != len(s)-1 {
				return ErrMultiLevel
			}
		case '+':
			// [MQTT-4.7.1-3] the entire level: preceded by start or '/',
			// followed by end or '/'.
			if (i > 0 && s[i-1] != '/') || (i < len(s)-1 && s[i+1] != '/') {
				return ErrSingleLevel
			}
		}
	}
	return nil
}

// ParseShared splits "$share/{ShareName}/{filter}" (MQTT 5.0 §4.8.2).
//
// When s does not start with "$share/" it returns filter=s, shared=false and
// a nil error, without validating s. When it does, shared is true, the
// ShareName must be at least one character [MQTT-4.8.2-2], contain no '/',
// '+' or '#' and be followed by '/' and a topic filter [MQTT-4.8.2-1], and
// the filter must pass ValidFilter; on failure err says which rule failed
// (wrapping the ValidFilter error) and group and filter are empty.
func ParseShared(s string) (group, filter string, shared bool, err error) {
	if !strings.HasPrefix(s, SharePrefix) {
		return "", s, false, nil
	}
	if len(s) > MaxLen {
		return "", "", true, ErrTooLong // [MQTT-4.7.3-3]
	}
	rest := s[len(SharePrefix):]
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return "", "", true, ErrShareNoFilter // [MQTT-4.8.2-1]
	}
	group, filter = rest[:slash], rest[slash+1:]
	if group == "" || strings.ContainsAny(group, "+#") {
		return "", "", true, ErrShareName // [MQTT-4.8.2-2], [MQTT-4.8.2-1]
	}
	if err := checkCommon(group); err != nil {
		return "", "", true, fmt.Errorf("topic: shared subscription ShareName: %w", err)
	}
	if err := ValidFilter(filter); err != nil {
		if errors.Is(err, ErrEmpty) {
			return "", "", true, ErrShareNoFilter // [MQTT-4.8.2-1]
		}
		return "", "", true, fmt.Errorf("topic: shared subscription filter: %w", err)
	}
	return group, filter, true, nil
}

// Match reports whether the topic name matches the topic filter. Both are
// assumed valid (ValidName, ValidFilter); an invalid pair gives an unspecified
// answer but never panics. Match does not allocate.
//
// A filter starting with a wildcard does not match a name starting with '$'
// [MQTT-4.7.2-1]. '#' matches its parent level too: "sport/#" matches "sport"
// (§4.7.1.2 example). '+' matches one level, which may be empty: "+/+" matches
// "/finance" (§4.7.1.3 example).
func Match(filter, name string) bool {
	if filter == "" || name == "" {
		return false
	}
	if name[0] == '$' && (filter[0] == '+' || filter[0] == '#') {
		return false // [MQTT-4.7.2-1]
	}
	for {
		fe := strings.IndexByte(filter, '/')
		if fe < 0 {
			fe = len(filter)
		}
		fl := filter[:fe]
		if fl == "#" {
			return true // [MQTT-4.7.1-2]: this level and every one below it
		}
		ne := strings.IndexByte(name, '/')
		if ne < 0 {
			ne = len(name)
		}
		if fl != "+" && fl != name[:ne] {
			return false
		}
		fDone, nDone := fe == len(filter), ne == len(name)
		switch {
		case fDone && nDone:
			return true
		case fDone:
			return false // the name has more levels than the filter
		case nDone:
			// The name ran out: only a trailing "/#" still matches, since
			// '#' includes the parent level ("sport/#" matches "sport").
			return filter[fe+1:] == "#"
		}
		filter, name = filter[fe+1:], name[ne+1:]
	}
}
