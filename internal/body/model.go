package body

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// ErrMalformed is returned by RewriteModel for a body that is not a
// well-formed JSON object.
var ErrMalformed = errors.New("body: not a well-formed JSON object")

// QuoteModel returns model as a JSON string literal, for RewriteModel.
// Adapters compute it once per tier.
func QuoteModel(model string) []byte {
	q, _ := json.Marshal(model) // a string always marshals
	return q
}

// RewriteModel returns b with the value of every top-level "model" key
// replaced by quoted, a JSON string literal (QuoteModel), and every other
// byte unchanged: nothing is re-encoded, so key order, spacing, number
// formats and unknown fields reach the server exactly as the caller wrote
// them. A JSON object with duplicate "model" keys has each one rewritten,
// since servers differ in which one they honour.
//
// found reports whether b has a top-level "model" key; without one b is
// returned as is (an API such as Azure OpenAI names the model in the URL).
// A b that is not a well-formed JSON object gives ErrMalformed, so that a
// request is never sent with a model other than the one asked for.
func RewriteModel(b []byte, quoted []byte) (out []byte, found bool, err error) {
	if !json.Valid(b) {
		return nil, false, ErrMalformed
	}
	var spans [][2]int
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false, ErrMalformed
	}
	i = skipWS(b, i+1)
	for i < len(b) && b[i] != '}' {
		end := skipString(b, i)
		isModel := isModelKey(b[i+1 : end-1])
		i = skipWS(b, end)
		i = skipWS(b, i+1) // past ':'
		vend := skipValue(b, i)
		if isModel {
			spans = append(spans, [2]int{i, vend})
		}
		i = skipWS(b, vend)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	if len(spans) == 0 {
		return b, false, nil
	}
	n := len(b)
	for _, s := range spans {
		n += len(quoted) - (s[1] - s[0])
	}
	out = make([]byte, 0, n)
	prev := 0
	for _, s := range spans {
		out = append(out, b[prev:s[0]]...)
		out = append(out, quoted...)
		prev = s[1]
	}
	out = append(out, b[prev:]...)
	return out, true, nil
}

func isModelKey(raw []byte) bool {
	if string(raw) == "model" {
		return true
	}
	if bytes.IndexByte(raw, '\\') < 0 || len(raw) > 64 {
		return false
	}
	// An escaped key ("mod\u0065l") means the same to every JSON decoder.
	var s string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	return json.Unmarshal(q, &s) == nil && s == "model"
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
// b is valid JSON.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the value starting at b[i]. b is
// valid JSON.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
		i++
	}
	return i
}

// Model returns the string value of b's top-level "model" key (escaped
// key spellings included, as RewriteModel reads them), and false when b
// has none that can be read without decoding: no such key, a value that
// is not a string, holds escapes or is not UTF-8, or b cut before the
// value ends. b may
// be truncated (a response's first bytes): the scan stops at its end.
func Model(b []byte) (string, bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	i = skipWS(b, i+1)
	for i < len(b) && b[i] == '"' {
		end := skipString(b, i)
		if end > len(b) || end-1 <= i || b[end-1] != '"' {
			return "", false // cut inside a key
		}
		isModel := isModelKey(b[i+1 : end-1])
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return "", false
		}
		i = skipWS(b, i+1)
		vend := skipValue(b, i)
		if isModel {
			if i < len(b) && b[i] == '"' && vend-1 > i && vend <= len(b) && b[vend-1] == '"' {
				if v := b[i+1 : vend-1]; bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
					return string(v), true
				}
			}
			return "", false
		}
		i = skipWS(b, vend)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return "", false
}
