package sturdytest

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

type delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage,omitempty"`
}

// stream answers a chat completion as server-sent events, one flushed
// chunk at a time: a role chunk, one chunk per word of content, a chunk
// with finish_reason "stop", a usage chunk if stream_options.include_usage,
// then `data: [DONE]`. MidStreamCut and TruncateStream apply here.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, cfg *Config, req *chatRequest, content string, u usage) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	s.writeHeader(w, http.StatusOK)
	if rc.Flush() != nil || !s.sleep(ctx, cfg.SlowFirstByte) {
		s.giveUp(w)
		return
	}

	id, created := nextID(), time.Now().Unix()
	mk := func(d delta, finish string) chunk {
		c := chunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model,
			Choices: []chunkChoice{{Delta: d}}}
		if finish != "" {
			c.Choices[0].FinishReason = &finish
		}
		return c
	}
	empty := ""
	chunks := []chunk{mk(delta{Role: "assistant", Content: &empty}, "")}
	for _, word := range strings.SplitAfter(content, " ") {
		chunks = append(chunks, mk(delta{Content: &word}, ""))
	}
	chunks = append(chunks, mk(delta{}, "stop"))
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		last := mk(delta{}, "")
		last.Choices = []chunkChoice{}
		last.Usage = &u
		chunks = append(chunks, last)
	}

	for i, c := range chunks {
		if i > 0 && !s.sleep(ctx, cfg.ChunkDelay) {
			s.giveUp(w)
			return
		}
		data, _ := json.Marshal(c)
		if !s.event(w, rc, data) {
			return
		}
		if cfg.MidStreamCut > 0 && i+1 == cfg.MidStreamCut {
			s.cut(w, false)
			return
		}
	}
	if cfg.MidStreamCut > 0 {
		s.cut(w, false)
		return
	}
	if cfg.TruncateStream {
		return
	}
	s.event(w, rc, []byte("[DONE]"))
}

// event writes and flushes one `data: ...` event; it reports false (and
// gives up the request) if the client is gone.
func (s *Server) event(w http.ResponseWriter, rc *http.ResponseController, data []byte) bool {
	buf := make([]byte, 0, len(data)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	if _, err := w.Write(buf); err != nil || rc.Flush() != nil {
		s.giveUp(w)
		return false
	}
	return true
}
