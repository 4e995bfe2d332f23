package httpmw

import "bytes"

// doneScanner watches a server-sent-event stream, chunk by chunk, for the
// OpenAI terminator line `data: [DONE]` (also `data:[DONE]`). Lines end
// at CR, LF or CRLF, as the SSE spec allows. It keeps only the first
// bytes of the current line, so it costs nothing per chunk but the
// search for line ends.
type doneScanner struct {
	line [16]byte
	n    uint8 // bytes of the current line seen, up to len(line)+1: too long
	done bool
}

func (s *doneScanner) write(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			s.add(p)
			return
		}
		s.add(p[:i])
		s.endLine()
		p = p[i+1:]
	}
}

func (s *doneScanner) add(p []byte) {
	if int(s.n) < len(s.line) {
		copy(s.line[s.n:], p)
	}
	s.n = uint8(min(int(s.n)+len(p), len(s.line)+1))
}

func (s *doneScanner) endLine() {
	if int(s.n) <= len(s.line) {
		l := s.line[:s.n]
		if string(l) == "data: [DONE]" || string(l) == "data:[DONE]" {
			s.done = true
		}
	}
	s.n = 0
}

// sawDone reports whether the terminator was seen, counting a last line
// not followed by a line end.
func (s *doneScanner) sawDone() bool {
	if !s.done && s.n > 0 {
		s.endLine()
	}
	return s.done
}

// usageScanner finds `"total_tokens": <digits>` in a JSON body or an SSE
// stream as it passes, keeping the last value seen: the usage of a chat
// completion, or of a stream's final usage chunk. It is a light scan, not
// a parser: a "total_tokens" key inside a string value would fool it, at
// the cost of a token-budget correction. The key is searched with
// bytes.Index; the few bytes after it are read one by one. A key split
// across two chunks is found through carry, the previous chunk's tail.
type usageScanner struct {
	num    int64
	last   int64 // -1: none
	carry  [maxPat - 1]byte
	state  uint8 // 0: searching; stColon, stValue, stDigits: after the key
	digits uint8
	nCarry uint8
	key    uint8 // index in scanKeys
}

// scanKeys are the quoted keys a usageScanner can look for: the total
// (token budgets) and the GenAI token counts of chat completions.
var scanKeys = [...]string{usagePat, `"prompt_tokens"`, `"completion_tokens"`}

const (
	keyTotal = iota
	keyPrompt
	keyCompletion
)

// maxPat is the longest of scanKeys.
const maxPat = len(`"completion_tokens"`)

const (
	usagePat = `"total_tokens"`
	stColon  = 1 // after the key: whitespace, then ':'
	stValue  = 2 // after ':': whitespace, then digits
	stDigits = 3
)

func newUsageScanner() usageScanner { return newKeyScanner(keyTotal) }

// newKeyScanner scans for the number after scanKeys[key].
func newKeyScanner(key uint8) usageScanner { return usageScanner{key: key, last: -1} }

func (s *usageScanner) write(p []byte) {
	pat := scanKeys[s.key]
	carry := s.carry[:len(pat)-1]
	i := 0
	if s.state == 0 && s.nCarry > 0 {
		// A key that starts in the carry and ends in p.
		var buf [2 * maxPat]byte
		n := copy(buf[:], carry[:s.nCarry])
		m := copy(buf[n:], p[:min(len(p), len(pat)-1)])
		if k := bytes.Index(buf[:n+m], []byte(pat)); k >= 0 {
			s.state = stColon
			i = k + len(pat) - n
		}
	}
	for i < len(p) {
		if s.state == 0 {
			k := bytes.Index(p[i:], []byte(pat))
			if k < 0 {
				break
			}
			s.state = stColon
			i += k + len(pat)
			continue
		}
		i = s.value(p, i)
	}
	if s.state == 0 {
		// Keep the tail for a key split across chunks.
		if len(p) >= len(carry) {
			s.nCarry = uint8(copy(carry, p[len(p)-len(carry):]))
		} else {
			keep := min(int(s.nCarry), len(carry)-len(p))
			copy(carry, carry[int(s.nCarry)-keep:s.nCarry])
			s.nCarry = uint8(keep + copy(carry[keep:], p))
		}
	} else {
		s.nCarry = 0
	}
}

// value reads p[i] after the key and returns the next index.
func (s *usageScanner) value(p []byte, i int) int {
	c := p[i]
	switch s.state {
	case stColon:
		switch c {
		case ' ', '\t', '\r', '\n':
		case ':':
			s.state = stValue
		default:
			s.state = 0
			return i
		}
	case stValue:
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c >= '0' && c <= '9':
			s.state, s.num, s.digits = stDigits, int64(c-'0'), 1
		default:
			s.state = 0
			return i
		}
	case stDigits:
		if c >= '0' && c <= '9' && s.digits < 18 {
			s.num = s.num*10 + int64(c-'0')
			s.digits++
			break
		}
		s.last = s.num
		s.state = 0
		return i
	}
	return i + 1
}

// tokens returns the last total seen, or -1.
func (s *usageScanner) tokens() int64 {
	if s.state == stDigits {
		return s.num
	}
	return s.last
}
