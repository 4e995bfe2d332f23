package httpmw

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

// splitWrite feeds p to write in chunks cut at the given points.
func splitWrite(write func([]byte), p []byte, cuts []byte) {
	for _, c := range cuts {
		if len(p) == 0 {
			break
		}
		n := int(c) % (len(p) + 1)
		write(p[:n])
		p = p[n:]
	}
	write(p)
}

func refDone(stream []byte) bool {
	for _, line := range regexp.MustCompile("\r\n|\r|\n").Split(string(stream), -1) {
		if line == "data: [DONE]" || line == "data:[DONE]" {
			return true
		}
	}
	return false
}

func TestDoneScanner(t *testing.T) {
	cases := map[string]bool{
		"data: {}\n\ndata: [DONE]\n\n":     true,
		"data: {}\r\n\r\ndata:[DONE]\r\n":  true,
		"data: [DONE]":                     true,
		"data: {}\n\n":                     false,
		"data: [DONE] \n":                  false,
		"xdata: [DONE]\n":                  false,
		"data: {\"x\":\"data: [DONE]\"}\n": false,
	}
	for in, want := range cases {
		var s doneScanner
		splitWrite(s.write, []byte(in), []byte{3, 5, 1})
		assert.Equal(t, want, s.sawDone(), "%q", in)
	}
}

func FuzzSSETerminator(f *testing.F) {
	f.Add([]byte("data: {\"a\":1}\n\ndata: [DONE]\n\n"), []byte{4, 9})
	f.Add([]byte("data: {}\r\rdata:[DONE]"), []byte{1})
	f.Add([]byte("data: [DON"), []byte{})
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		var s doneScanner
		splitWrite(s.write, stream, cuts)
		if got, want := s.sawDone(), refDone(stream); got != want {
			t.Fatalf("sawDone %v, want %v for %q", got, want, stream)
		}
	})
}

func refTokens(p []byte) int64 {
	m := regexp.MustCompile(`"total_tokens"[ \t\r\n]*:[ \t\r\n]*([0-9]+)`).FindAllSubmatch(p, -1)
	if len(m) == 0 {
		return -1
	}
	d := m[len(m)-1][1]
	if len(d) > 18 {
		d = d[:18]
	}
	n, _ := strconv.ParseInt(string(d), 10, 64)
	return n
}

func TestUsageScanner(t *testing.T) {
	sse := []byte("data: {\"choices\":[]}\n\ndata: {\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6,\"total_tokens\":11}}\n\ndata: [DONE]\n\n")
	for cut := range len(sse) {
		s := newUsageScanner()
		s.write(sse[:cut])
		s.write(sse[cut:])
		assert.EqualValues(t, 11, s.tokens(), "cut at %d", cut)
	}
	s := newUsageScanner()
	s.write([]byte(`{"total_tokens" : 42}`))
	assert.EqualValues(t, 42, s.tokens())
	s = newUsageScanner()
	s.write([]byte(`{"usage":null}`))
	assert.EqualValues(t, -1, s.tokens())
}

func FuzzUsageScanner(f *testing.F) {
	f.Add([]byte(`{"usage":{"total_tokens":15}}`), []byte{7, 3})
	f.Add([]byte(`"total_tokens""total_tokens": 3`), []byte{14})
	f.Fuzz(func(t *testing.T, p, cuts []byte) {
		s := newUsageScanner()
		splitWrite(s.write, p, cuts)
		if got, want := s.tokens(), refTokens(p); got != want && !bytes.Contains(p, []byte(`"total_tokens""total_tokens"`)) {
			t.Fatalf("tokens %d, want %d for %q", got, want, p)
		}
	})
}
