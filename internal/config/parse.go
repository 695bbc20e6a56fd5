package config

import (
	"bytes"
	"fmt"
	"strings"
)

// decode reads an INI file into c and returns every problem it finds, in line order.
//
// The format is deliberately small and strict:
//   - "[section]" starts a section; only known sections are allowed, each at most once;
//   - "key = value" sets a key of the current section; surrounding whitespace is trimmed and the value
//     is everything after the first "=", taken literally (no quotes, no escapes, no trailing comments);
//   - a value wrapped in matching double or single quotes is an error, not a value with quotes in
//     it: LavinMQ's INI (Crystal's) takes quotes literally, so data_dir = "/var/lib/x" would name a
//     directory whose name starts with a quote. Write the value bare; inner quotes are kept;
//   - a line whose first non-blank character is '#' or ';' is a comment; blank lines are ignored.
//
// Unknown and duplicate keys, keys outside a section and values of the wrong type are errors. After
// an unknown section header its keys are skipped, so one mistake gives one error.
func decode(c *Config, file string, data []byte) []*Error {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	var (
		errs        []*Error
		section     string
		skip        bool               // inside an unknown or malformed section
		sectionLine = map[string]int{} // section → line of its header
		keyLine     = map[string]int{} // lineKey(section, key) → line that set it
	)
	fail := func(line int, section, key, format string, args ...any) {
		errs = append(errs, &Error{File: file, Line: line, Section: section, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	for i, raw := range strings.Split(string(data), "\n") {
		line := i + 1
		text := strings.TrimSpace(raw)
		switch {
		case text == "" || text[0] == '#' || text[0] == ';':
			continue

		case text[0] == '[':
			section, skip = "", true
			if !strings.HasSuffix(text, "]") {
				fail(line, "", "", "section header %q has no closing \"]\"", text)
				continue
			}
			name := strings.TrimSpace(text[1 : len(text)-1])
			switch {
			case name == "":
				fail(line, "", "", "empty section name")
			case !knownSection(name):
				fail(line, name, "", "unknown section (known sections: %s)", strings.Join(sections(), ", "))
			default:
				if first, ok := sectionLine[name]; ok {
					fail(line, name, "", "section appears twice (first on line %d)", first)
				} else {
					sectionLine[name] = line
				}
				// Keep decoding a repeated section: its keys are still checked for duplicates.
				section, skip = name, false
			}

		default:
			if skip {
				continue
			}
			name, value, ok := strings.Cut(text, "=")
			if !ok {
				fail(line, section, "", "expected \"key = value\", \"[section]\" or a comment, found %q", text)
				continue
			}
			name, value = strings.TrimSpace(name), strings.TrimSpace(value)
			if name == "" {
				fail(line, section, "", "missing key name before \"=\"")
				continue
			}
			if section == "" {
				fail(line, "", name, "key outside a section; put it under one of [%s]", strings.Join(sections(), "], ["))
				continue
			}
			k := lookup(section, name)
			if k == nil {
				fail(line, section, name, "unknown key%s", suggest(section, name))
				continue
			}
			lk := lineKey(section, name)
			if first, ok := keyLine[lk]; ok {
				fail(line, section, name, "duplicate key (first set on line %d)", first)
				continue
			}
			keyLine[lk] = line
			if c.lines != nil {
				c.lines[lk] = line
			}
			if quoted(value) {
				// The value itself is not repeated: it may be a password.
				fail(line, section, name, "the value is wrapped in quotes; values are taken literally, so remove the quotes")
				continue
			}
			if err := set(k.field(c), value); err != nil {
				fail(line, section, name, "%s", err.Error())
			}
		}
	}
	return errs
}

// quoted reports whether v is wrapped in a matching pair of double or single quotes.
func quoted(v string) bool {
	return len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0]
}

func knownSection(name string) bool {
	for _, k := range keys {
		if k.section == name {
			return true
		}
	}
	return false
}

// suggest returns ` (did you mean "x"?)` for the known key of section closest to name, or "" when no
// key is close enough to be a likely typo.
func suggest(section, name string) string {
	best, bestDist := "", 3 // at most two edits away
	for _, k := range keys {
		if k.section != section {
			continue
		}
		if d := editDistance(name, k.name); d < bestDist {
			best, bestDist = k.name, d
		}
	}
	if best == "" {
		// A key of another section written in the wrong place is a common mistake too.
		var in []string
		for _, k := range keys {
			if k.name == name {
				in = append(in, "["+k.section+"]")
			}
		}
		if len(in) == 0 {
			return ""
		}
		return " (it belongs in " + strings.Join(in, " or ") + ")"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, by bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
