package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// column is one column of a table: its header (rabbitmqctl's name for the item) and how its cell
// is taken from one object of the API's JSON.
type column struct {
	header string
	cell   func(obj map[string]any) string
}

// writeTable prints rows as a table aligned with tabwriter, with a header line.
func writeTable(w io.Writer, cols []column, rows []map[string]any) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	for i, c := range cols {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, c.header)
	}
	fmt.Fprintln(tw)
	for _, row := range rows {
		for i, c := range cols {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, printable(c.cell(row)))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// An empty last cell would leave trailing blanks: a copied table should not carry them.
	var out bytes.Buffer
	for line := range strings.Lines(buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := w.Write(out.Bytes())
	return err
}

// printable escapes control characters and invalid UTF-8, as strconv.Quote does, so that a
// client id or a server message can neither break the table's alignment nor reach the terminal
// as an escape sequence.
func printable(s string) string {
	bad := !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
		return r == '\t' || unicode.IsControl(r) || r == utf8.RuneError
	})
	if !bad {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// field returns the first of keys present in obj, or nil.
func field(obj map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := obj[k]; ok && v != nil {
			return v
		}
	}
	return nil
}

// text formats a JSON value for a cell.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = text(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}

// col is a column showing the first present of keys.
func col(header string, keys ...string) column {
	if len(keys) == 0 {
		keys = []string{header}
	}
	return column{header, func(obj map[string]any) string { return text(field(obj, keys...)) }}
}

// tagList reads a user's tags, a comma-separated string in RabbitMQ's older JSON and an array in
// newer RabbitMQ and LavinMQ JSON.
func tagList(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	case []any:
		for _, e := range v {
			if s := text(e); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// timestamp formats a time the API gives as milliseconds since the epoch (RabbitMQ's
// connected_at), as seconds, or as a string.
func timestamp(v any) string {
	n, ok := v.(json.Number)
	if !ok {
		return text(v)
	}
	i, err := n.Int64()
	if err != nil || i <= 0 {
		return n.String()
	}
	var t time.Time
	if i >= 1e11 { // milliseconds: 1e11 s is the year 5138
		t = time.UnixMilli(i)
	} else {
		t = time.Unix(i, 0)
	}
	return t.UTC().Format(time.RFC3339)
}

// count shows an array's length, or a number as it is.
func count(v any) string {
	if a, ok := v.([]any); ok {
		return strconv.Itoa(len(a))
	}
	return text(v)
}
