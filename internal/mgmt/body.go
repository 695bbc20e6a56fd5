package mgmt

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Request body limits.
const (
	maxBody            = 1 << 20  // every JSON body but definitions
	maxDefinitionsBody = 32 << 20 // POST /api/definitions (definitions.DefaultMaxSize)
)

// readBody reads a request body of at most limit bytes; a larger one is a 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, badRequest("reading the request body: %v", err)
	}
	return data, nil
}

// decodeBody decodes a JSON object body (at most maxBody bytes) into v, a pointer to a struct.
// An empty body leaves v as it is. The error is a 400 naming the field at fault, or a 413.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := readBody(w, r, maxBody)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return jsonError(data, err)
	}
	if dec.More() {
		return badRequest("malformed JSON: more than one value in the body")
	}
	return nil
}

// jsonError turns an encoding/json error into a 400 that names the field or the position.
func jsonError(data []byte, err error) *Error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var fe *fieldError
	switch {
	case errors.As(err, &fe):
		return badRequest("%s", fe.Error())
	case errors.As(err, &se):
		line, col := lineCol(data, se.Offset)
		return badRequest("malformed JSON at line %d, column %d: %v", line, col, se)
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("body: want a JSON object, got %s", te.Value)
		}
		return badRequest("%s: want %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: unexpected end of the body")
	}
	return badRequest("malformed JSON: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "ptr":
		return "a value of another type"
	}
	return "a number"
}

func lineCol(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// fieldError is a decoding error that names its field; custom UnmarshalJSON methods return it,
// since encoding/json does not add the field name to their errors.
type fieldError struct {
	field, msg string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// tagList is a user's tags in a request body: a comma-separated string ("administrator,
// monitoring", RabbitMQ before 3.9) or an array of strings (RabbitMQ 3.9+, LavinMQ).
type tagList []string

func (t *tagList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = splitTags(s)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return &fieldError{"tags", "want a comma-separated string or an array of strings"}
	}
	var out tagList
	for _, s := range list {
		out = append(out, splitTags(s)...)
	}
	*t = out
	return nil
}

func splitTags(s string) []string {
	var out []string
	for t := range strings.SplitSeq(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// required returns *p, or a 400 naming field when the body did not have it.
func required(field string, p *string) (string, error) {
	if p == nil {
		return "", badRequest("%s: missing", field)
	}
	return *p, nil
}

// checkName checks a user or vhost name from the path.
func checkName(kind, name string) error {
	switch {
	case name == "":
		return badRequest("%s name: empty", kind)
	case len(name) > 255:
		return badRequest("%s name: longer than 255 bytes", kind)
	case !validText(name):
		return badRequest("%s name: not valid UTF-8 or contains control characters", kind)
	}
	return nil
}

func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
