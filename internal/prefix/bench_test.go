package prefix

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// openAIRequest is an OpenAI-style chat completions request as a Go
// client builds it (go-openai's field order).
type openAIRequest struct {
	Model     string          `json:"model"`
	Messages  []openAIMessage `json:"messages"`
	MaxTokens int             `json:"max_tokens,omitempty"`
	Stream    bool            `json:"stream,omitempty"`
	User      string          `json:"user,omitempty"`
}

type openAIMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// request32KiB is a conversation with 32 KiB of prompt text: a 4 KiB
// system prompt and seven turns of 4 KiB, written by gen.
func request32KiB(gen func(tag string, n int) string) openAIRequest {
	req := openAIRequest{Model: "llama-3.1-70b", MaxTokens: 512, Stream: true, User: "u-1"}
	req.Messages = append(req.Messages, openAIMessage{"system", gen("s", 4096)})
	for i := range 7 {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		req.Messages = append(req.Messages, openAIMessage{role, gen(string(rune('a'+i)), 4096)})
	}
	return req
}

// prose returns n bytes of text with a line break every 100 to 200 bytes
// and a quotation every 400 or so: what JSON escapes in a chat prompt.
func prose(tag string, n int) string {
	words := strings.Fields("the replica that served a prompt keeps its attention state so a later prompt that starts the same way skips most of its prefill and answers sooner")
	var b strings.Builder
	line := 0
	for i := 0; b.Len() < n; i++ {
		w := words[(i*7+int(tag[0]))%len(words)]
		if i%67 == 0 {
			w = `"` + w + `"`
		}
		b.WriteString(w)
		line += len(w) + 1
		if line > 100+(i*31)%100 {
			b.WriteString(".\n")
			line = 0
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()[:n]
}

// BenchmarkKey32KiB compares what a client pays to encode a 32 KiB chat
// request (json.Marshal) with what Read adds to find its key: the
// extraction must cost well under the encoding. "prose" escapes a line
// break every 100-200 bytes and a quote every 400; "dense" (code, JSON in
// the prompt) escapes every 22 bytes.
func BenchmarkKey32KiB(b *testing.B) {
	for _, tc := range []struct {
		name string
		gen  func(string, int) string
	}{{"prose", prose}, {"dense", text}} {
		req := request32KiB(tc.gen)
		body, err := json.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name+"/json.Marshal", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/Read", func(b *testing.B) {
			var out [MaxBlocks]uint64
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if n, _, ok := Read(body, 0, out[:]); !ok || n != MaxBlocks {
					b.Fatal(n, ok)
				}
			}
		})
		// The two in alternating batches, so that a busy machine slows
		// both alike: their ratio is the figure to compare.
		b.Run(tc.name+"/ratio", func(b *testing.B) {
			var out [MaxBlocks]uint64
			var marshal, read time.Duration
			for b.Loop() {
				t0 := time.Now()
				for range 8 {
					json.Marshal(req)
				}
				t1 := time.Now()
				for range 8 {
					Read(body, 0, out[:])
				}
				marshal += t1.Sub(t0)
				read += time.Since(t1)
			}
			b.ReportMetric(float64(marshal)/float64(read), "marshal/read")
		})
		// The whole prompt (128 blocks) rather than its first 16 KiB.
		b.Run(tc.name+"/Read-all", func(b *testing.B) {
			var out [2 * MaxBlocks]uint64
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if n, _, ok := Read(body, 0, out[:]); !ok || n < MaxBlocks {
					b.Fatal(n, ok)
				}
			}
		})
	}
}
