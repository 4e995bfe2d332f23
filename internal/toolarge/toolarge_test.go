package toolarge

import (
	"strings"
	"testing"
)

func TestWindowReadsTheNamedLimit(t *testing.T) {
	for msg, want := range map[string]int{
		"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.": 8192,
		"prompt is too long: 210000 tokens > 200000 maximum":                                                  200000,
		"The input token count (1200293) exceeds the maximum number of tokens allowed (1,048,576).":           1048576,
		"The decoder prompt (length 5951) is longer than the maximum model length of 4096. Make sure":         4096,
		"The input (5000 tokens) is longer than the model's context length (4096 tokens).":                    4096,
		"context_length_exceeded":           0,
		"maximum context length is unknown": 0,
	} {
		lower := []byte(strings.ToLower(msg))
		if !Says(lower) {
			t.Errorf("%q: not recognised", msg)
		}
		if got := Window(lower); got != want {
			t.Errorf("%q: window %d, want %d", msg, got, want)
		}
	}
	if Says([]byte("invalid tool schema")) {
		t.Error("an unrelated 400 is not too large")
	}
}
