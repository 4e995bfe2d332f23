package prefix

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// The scanner below walks a JSON body in place. Every function takes the
// index of the first byte of what it reads and returns the index after it,
// or -1 if the body is not well-formed there. It checks the structure
// (brackets, commas, colons, quotes, literals) and the escapes it decodes,
// and is lenient inside numbers, about control characters in strings and
// about escapes it need not decode, which a server rejects anyway: it
// decides whether a body has a key, it is not a validator.

// maxDepth bounds nesting, so that a hostile body cannot make the scanner
// recurse without end.
const maxDepth = 256

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

// skipString skips the string whose opening quote is b[i].
func skipString(b []byte, i int) int {
	return skipStringBody(b, i+1)
}

// skipStringBody finds the closing quote of a string whose content starts
// at i: the first quote not escaped by an odd run of backslashes. Escapes
// before i must be whole.
func skipStringBody(b []byte, i int) int {
	for {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1
		}
		j := i + q
		k := j
		for k > i && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j + 1
		}
		i = j + 1
	}
}

// skipValue skips the value at b[i] (after any whitespace).
func skipValue(b []byte, i, depth int) int {
	i = skipWS(b, i)
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{':
		if depth >= maxDepth {
			return -1
		}
		o := openObject(b, i)
		for {
			_, ok := o.next()
			if !ok {
				return o.end()
			}
			o.skip(depth + 1)
		}
	case '[':
		if depth >= maxDepth {
			return -1
		}
		a := openArray(b, i)
		for a.next() {
			a.skip(depth + 1)
		}
		return a.end()
	case 't':
		return literal(b, i, "true")
	case 'f':
		return literal(b, i, "false")
	case 'n':
		return literal(b, i, "null")
	}
	// A number: its grammar is not checked, only that it is one.
	j := i
	for j < len(b) {
		switch c := b[j]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			j++
			continue
		}
		break
	}
	if j == i {
		return -1
	}
	return j
}

func literal(b []byte, i int, lit string) int {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return -1
}

// object walks the members of a JSON object. next reads a key and leaves
// the position at its value; the caller then moves past the value with
// skip or with at. Any error sticks: next returns false and end -1.
type object struct {
	b     []byte
	i     int // position; -1 after an error
	first bool
}

// openObject starts at b[i] == '{'.
func openObject(b []byte, i int) object {
	return object{b: b, i: i + 1, first: true}
}

// next returns the next member's raw key (escapes not decoded) and leaves
// the position at its value, which is inside b; false at the closing brace
// or on error.
func (o *object) next() (key []byte, ok bool) {
	if o.i < 0 {
		return nil, false
	}
	b := o.b
	i := skipWS(b, o.i)
	if i >= len(b) {
		o.i = -1
		return nil, false
	}
	if b[i] == '}' {
		// It follows '{' or a member; one after a comma fails the key
		// check below.
		o.i = i + 1
		return nil, false
	}
	if !o.first {
		if b[i] != ',' {
			o.i = -1
			return nil, false
		}
		i = skipWS(b, i+1)
	}
	o.first = false
	if i >= len(b) || b[i] != '"' {
		o.i = -1
		return nil, false
	}
	end := skipString(b, i)
	if end < 0 {
		o.i = -1
		return nil, false
	}
	key = b[i+1 : end-1]
	i = skipWS(b, end)
	if i >= len(b) || b[i] != ':' {
		o.i = -1
		return nil, false
	}
	o.i = skipWS(b, i+1)
	if o.i >= len(b) {
		o.i = -1
		return nil, false
	}
	return key, true
}

// value returns the position of the current member's value.
func (o *object) value() int { return o.i }

// skip moves past the current member's value.
func (o *object) skip(depth int) {
	if o.i >= 0 {
		o.i = skipValue(o.b, o.i, depth)
	}
}

// at moves past a value the caller read itself, which ended at end (-1 on
// error).
func (o *object) at(end int) {
	o.i = end
}

// end returns the position after the closing brace, or -1.
func (o *object) end() int { return o.i }

// array walks the elements of a JSON array, like object.
type array struct {
	b     []byte
	i     int
	first bool
}

// openArray starts at b[i] == '['.
func openArray(b []byte, i int) array {
	return array{b: b, i: i + 1, first: true}
}

// next leaves the position at the next element, which is inside b; false
// at the closing bracket or on error.
func (a *array) next() bool {
	if a.i < 0 {
		return false
	}
	b := a.b
	i := skipWS(b, a.i)
	if i >= len(b) {
		a.i = -1
		return false
	}
	if b[i] == ']' {
		// It follows '[' or an element; one after a comma is not a
		// value, which skipValue or the caller rejects.
		a.i = i + 1
		return false
	}
	if !a.first {
		if b[i] != ',' {
			a.i = -1
			return false
		}
		i = skipWS(b, i+1)
	}
	a.first = false
	if i >= len(b) {
		a.i = -1
		return false
	}
	a.i = i
	return true
}

func (a *array) value() int { return a.i }

func (a *array) skip(depth int) {
	if a.i >= 0 {
		a.i = skipValue(a.b, a.i, depth)
	}
}

func (a *array) at(end int) { a.i = end }

func (a *array) end() int { return a.i }

// keyIs reports whether the raw key equals name once unescaped.
func keyIs(raw []byte, name string) bool {
	if string(raw) == name {
		return true
	}
	if len(raw) <= len(name) || bytes.IndexByte(raw, '\\') < 0 {
		return false // an escape takes more bytes than it stands for
	}
	// An escaped key ("mod\u0065l") means the same to every JSON decoder.
	var buf [32]byte
	n := 0
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			if n == len(buf) {
				return false
			}
			buf[n] = raw[i]
			n++
			i++
			continue
		}
		var e [utf8.UTFMax]byte
		m, w := unescape(raw, i, &e)
		if w < 0 || n+m > len(buf) {
			return false
		}
		n += copy(buf[n:], e[:m])
		i += w
	}
	return string(buf[:n]) == name
}

// unescape decodes the escape at b[i] == '\\' into e, returning how many
// bytes it wrote and how many it consumed (-1: not a valid escape). A
// surrogate pair in two \u escapes becomes one rune; a lone surrogate
// becomes U+FFFD, as encoding/json decodes it.
func unescape(b []byte, i int, e *[utf8.UTFMax]byte) (n, w int) {
	if i+1 >= len(b) {
		return 0, -1
	}
	if c := simple[b[i+1]]; c != 0 {
		e[0] = c
		return 1, 2
	}
	if b[i+1] == 'u' {
		r, ok := hex4(b, i+2)
		if !ok {
			return 0, -1
		}
		w = 6
		if utf16.IsSurrogate(r) {
			r2, ok := rune(0), false
			if i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				r2, ok = hex4(b, i+8)
			}
			if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
				r, w = d, 12
			} else {
				r = utf8.RuneError
			}
		}
		return utf8.EncodeRune(e[:], r), w
	}
	return 0, -1
}

// simple maps the character after a backslash to what it stands for, for
// every escape but \u; zero for the rest.
var simple = [256]byte{
	'"': '"', '\\': '\\', '/': '/',
	'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t',
}

func hex4(b []byte, i int) (rune, bool) {
	if len(b)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// feedString hashes the string whose opening quote is b[i] into c, in
// canonical form, and returns the position after its closing quote.
//
// The canonical form is the string JSON-escaped the one way most encoders
// agree on: \" \\ \n \r \t \b \f as such, other control characters as
// \u00xx, everything else as UTF-8. Encoders differ in the rest, which is
// what a prompt needs for clients to agree: encoding/json writes <, > and &
// as \u003c, \u003e and \u0026 unless told not to, Python's json every
// non-ASCII character as a \u escape, some encoders / as \/. So the string
// goes to the chain as it lies in b, and only \u and \/ escapes are
// rewritten. Decoding every escape instead (a prompt has one every 20 to
// 100 bytes: each line break and quote) cost about twice as much on
// BenchmarkKey32KiB's prompts, for the chain writes between escapes.
//
// Each backslash is found with bytes.IndexByte, and the closing quote too,
// searched again only when an escaped quote took the one found. Escapes
// that need no rewriting are not checked: a body with \q in a string may
// still have a key (a server rejects it anyway).
func feedString(c *chain, b []byte, i int) int {
	i++
	q := bytes.IndexByte(b[i:], '"')
	if q < 0 {
		return -1
	}
	q += i
	run := i // the first byte not yet written
	var e [12]byte
	for {
		// With nothing rewritten, the chain is full at lim.
		lim := run + c.room()
		if lim <= i {
			c.write(b[run:i])
			return skipStringBody(b, i)
		}
		end := min(q, lim)
		bs := bytes.IndexByte(b[i:end], '\\')
		if bs < 0 {
			c.write(b[run:end])
			if end == q {
				return q + 1
			}
			return skipStringBody(b, end) // no escape starts before end
		}
		bs += i
		switch b[bs+1] {
		case 'u', '/':
			c.write(b[run:bs])
			n, w := canonical(b, bs, &e)
			if w < 0 {
				return -1
			}
			c.write(e[:n])
			i = bs + w
			run = i
		default:
			i = bs + 2
		}
		if i > q {
			// The escape was \" and took the quote found.
			q = bytes.IndexByte(b[i:], '"')
			if q < 0 {
				return -1
			}
			q += i
		}
	}
}

// canonical writes into e the canonical form of the \u or \/ escape at
// s[j] and returns its length and how many bytes of s the escape took (-1:
// not a valid escape).
func canonical(s []byte, j int, e *[12]byte) (n, w int) {
	var d [utf8.UTFMax]byte
	m, w := unescape(s, j, &d)
	if w < 0 {
		return 0, -1
	}
	r, _ := utf8.DecodeRune(d[:m])
	switch {
	case r == '"' || r == '\\':
		e[0], e[1] = '\\', byte(r)
		return 2, w
	case r < 0x20:
		if x := shortEscape[r]; x != 0 {
			e[0], e[1] = '\\', x
			return 2, w
		}
		const hex = "0123456789abcdef"
		return copy(e[:], []byte{'\\', 'u', '0', '0', hex[r>>4], hex[r&0xf]}), w
	}
	return copy(e[:], d[:m]), w
}

// shortEscape is the two-character escape of each control character that
// has one.
var shortEscape = [0x20]byte{'\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't'}
