package config

import (
	"strconv"
	"strings"
)

// Error is one problem found while decoding or validating a configuration. Load, Parse and Validate
// return them joined (errors.Join); find one with errors.As, or split the joined error with its
// Unwrap() []error method to list every problem.
type Error struct {
	File    string // the file, "" when the value did not come from one
	Line    int    // 1-based line in File, 0 when unknown
	Section string // "" when the problem is not inside a section
	Key     string // "" when the problem is not about one key
	Msg     string // what is wrong
}

// Error formats e as "file:line: [section] key: message", leaving out the parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Section != "" {
		b.WriteString("[" + e.Section + "] ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}
