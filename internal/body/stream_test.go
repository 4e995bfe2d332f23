package body

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStreamScannerReadsTheTopLevelKeyOnly(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{`{"model":"m","stream":true}`, true},
		{`{ "stream" : true , "messages":[]}`, true},
		{`{"stream":false}`, false},
		{`{"model":"m"}`, false},
		{`{"stream_options":{"stream":true},"stream":false}`, false},
		{`{"messages":[{"content":"\"stream\":true"}]}`, false},
		{`{"meta":{"stream":true}}`, false},
		{`{"tools":[{"stream":true}],"x":1}`, false},
		{`{"stream":true,"stream":false}`, false},
		{`{"stream":false,"stream":true}`, true},
		{`{"str\u0065am":true}`, false},
		{`{"streaming":true}`, false},
		{`{"a":"stream","b":true}`, false},
		{`[{"stream":true}]`, false},
		{`"stream"`, false},
		{``, false},
	}
	for _, tc := range cases {
		var s StreamScanner
		s.Write([]byte(tc.in))
		assert.Equal(t, tc.want, s.Stream(), "%s", tc.in)
		// Byte by byte: the same answer.
		var b StreamScanner
		for i := range len(tc.in) {
			b.Write([]byte{tc.in[i]})
		}
		assert.Equal(t, tc.want, b.Stream(), "%s byte by byte", tc.in)
	}
}

func TestStreamScannerStopsAtTheObjectsEnd(t *testing.T) {
	var s StreamScanner
	s.Write([]byte(`{"stream":true}`))
	assert.True(t, s.Done())
	s.Write([]byte(`{"stream":false}`))
	assert.True(t, s.Stream())
}
