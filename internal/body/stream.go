package body

// StreamScanner reads a JSON object, chunk by chunk, for its top-level
// "stream" key: an OpenAI-style request asks for a server-sent-event
// stream with "stream": true. Nested objects and string contents are
// skipped; a key spelled with escapes is not recognised. With duplicate
// keys the last one counts, as with encoding/json. The zero value is
// ready to use; it keeps a few bytes of state and allocates nothing.
type StreamScanner struct {
	depth     int
	inStr     bool
	esc       bool
	expectKey bool // the next string at depth 1 is a key
	key       bool // the string being read is a top-level key
	keyN      uint8
	keyBuf    [6]byte
	keyLong   bool
	state     uint8 // 0: none; 1: after the "stream" key; 2: after its ':'
	stream    bool
	done      bool // the object has ended (or the input is not an object)
}

const streamKey = "stream"

// Write scans p, the next bytes of the body.
func (s *StreamScanner) Write(p []byte) {
	for _, c := range p {
		if s.done {
			return
		}
		s.byte(c)
	}
}

func (s *StreamScanner) byte(c byte) {
	if s.inStr {
		switch {
		case s.esc:
			s.esc = false
		case c == '\\':
			s.esc, s.keyLong = true, true
		case c == '"':
			s.inStr = false
			if s.key && !s.keyLong && string(s.keyBuf[:s.keyN]) == streamKey {
				s.state = 1
			}
			s.key = false
		case s.key:
			if int(s.keyN) < len(s.keyBuf) {
				s.keyBuf[s.keyN] = c
				s.keyN++
			} else {
				s.keyLong = true
			}
		}
		return
	}
	if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
		return
	}
	switch s.state {
	case 1:
		if c == ':' {
			s.state = 2
			return
		}
		s.state = 0
	case 2:
		s.stream = c == 't'
		s.state = 0
	}
	switch c {
	case '"':
		s.inStr, s.key = true, s.depth == 1 && s.expectKey
		s.keyN, s.keyLong, s.expectKey = 0, false, false
	case '{':
		s.depth++
		s.expectKey = s.depth == 1
	case '[':
		if s.depth == 0 {
			s.done = true // not an object
		}
		s.depth++
	case '}', ']':
		s.depth--
		if s.depth <= 0 {
			s.done = true
		}
	case ',':
		s.expectKey = s.depth == 1
	default:
		if s.depth == 0 {
			s.done = true // not an object
		}
	}
}

// Done reports whether the object has ended: more bytes change nothing.
func (s *StreamScanner) Done() bool { return s.done }

// Stream reports whether the bytes scanned so far hold a top-level
// "stream": true.
func (s *StreamScanner) Stream() bool { return s.stream }
