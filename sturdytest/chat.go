package sturdytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type message struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type choice struct {
	Index        int     `json:"index"`
	Message      message `json:"message"`
	FinishReason string  `json:"finish_reason"`
}

type completion struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	Usage   usage    `json:"usage"`
}

var completionSeq atomic.Int64

func nextID() string { return fmt.Sprintf("chatcmpl-fake%d", completionSeq.Add(1)) }

// tokens estimates the tokens of a text: ceil(len/4).
func tokens(text string) int { return (len(text) + 3) / 4 }

// promptTokens sums the estimate over the messages; content is a string
// or an array of parts whose "text" fields count.
func (req *chatRequest) promptTokens() int {
	n := 0
	for _, m := range req.Messages {
		var s string
		if json.Unmarshal(m.Content, &s) == nil {
			n += tokens(s)
			continue
		}
		var parts []struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(m.Content, &parts) == nil {
			var b strings.Builder
			for _, p := range parts {
				b.WriteString(p.Text)
			}
			n += tokens(b.String())
		}
	}
	return n
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request, cfg *Config) {
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			s.error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body exceeds %d bytes.", cfg.MaxBodyBytes), "invalid_request_error", "", "")
			return
		}
		s.giveUp(w)
		return
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.error(w, http.StatusBadRequest, "We could not parse the JSON body of your request: "+err.Error(), "invalid_request_error", "", "")
		return
	}
	if req.Model == "" {
		s.error(w, http.StatusBadRequest, "you must provide a model parameter", "invalid_request_error", "", "")
		return
	}
	s.stats.model(req.Model)
	if !cfg.acceptsModel(req.Model) {
		s.error(w, http.StatusNotFound, "The model `"+req.Model+"` does not exist or you do not have access to it.", "invalid_request_error", "", "model_not_found")
		return
	}
	prompt := req.promptTokens()
	if cfg.ContextWindow > 0 && prompt > cfg.ContextWindow {
		msg := fmt.Sprintf("This model's maximum context length is %d tokens. However, your messages resulted in %d tokens. Please reduce the length of the messages.", cfg.ContextWindow, prompt)
		s.error(w, http.StatusBadRequest, msg, "invalid_request_error", "messages", "context_length_exceeded")
		return
	}

	p := s.plan(cfg)
	if cfg.RateLimit.Capacity > 0 {
		h := w.Header()
		h.Set("X-Ratelimit-Limit-Requests", strconv.Itoa(int(math.Ceil(cfg.RateLimit.Capacity))))
		h.Set("X-Ratelimit-Remaining-Requests", strconv.Itoa(p.remaining))
	}
	if p.limited {
		s.rateLimited(w, cfg, p.retryAfter)
		return
	}

	if !s.slots.acquire(ctx, s.done) {
		s.giveUp(w)
		return
	}
	defer s.slots.release()
	if !s.sleep(ctx, p.latency+cfg.SlowHeaders) {
		s.giveUp(w)
		return
	}
	if p.fail {
		s.error(w, http.StatusInternalServerError, "The server had an error while processing your request. Sorry about that!", "server_error", "", "")
		return
	}

	content := cfg.reply(req.Model)
	u := usage{PromptTokens: prompt, CompletionTokens: tokens(content)}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	if req.Stream {
		s.stream(w, r, cfg, &req, content, u)
		return
	}
	out, _ := json.Marshal(completion{
		ID:      nextID(),
		Object:  "chat.completion",
		Created: time.Now().Unix(),
		Model:   req.Model,
		Choices: []choice{{Message: message{Role: "assistant", Content: content}, FinishReason: "stop"}},
		Usage:   u,
	})
	out = append(out, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	s.writeHeader(w, http.StatusOK)
	if cfg.SlowFirstByte > 0 {
		if http.NewResponseController(w).Flush() != nil || !s.sleep(ctx, cfg.SlowFirstByte) {
			s.giveUp(w)
			return
		}
	}
	if _, err := w.Write(out); err != nil {
		s.giveUp(w)
	}
}

// rateLimited answers 429 the way OpenAI does.
func (s *Server) rateLimited(w http.ResponseWriter, cfg *Config, after time.Duration) {
	h := w.Header()
	if !cfg.RateLimit.NoRetryAfter {
		h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(after.Seconds())), 10))
		h.Set("Retry-After-Ms", strconv.FormatInt(int64(math.Ceil(float64(after)/float64(time.Millisecond))), 10))
	}
	if h.Get("X-Ratelimit-Limit-Requests") == "" {
		h.Set("X-Ratelimit-Limit-Requests", "0")
	}
	h.Set("X-Ratelimit-Remaining-Requests", "0")
	h.Set("X-Ratelimit-Reset-Requests", after.String())
	msg := fmt.Sprintf("Rate limit reached for requests on %s. Please try again in %s.", cfg.Name, after)
	s.error(w, http.StatusTooManyRequests, msg, "requests", "", "rate_limit_exceeded")
}

func (s *Server) models(w http.ResponseWriter, cfg *Config) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, m := range cfg.Models {
		list.Data = append(list.Data, model{ID: m, Object: "model", Created: s.created.Unix(), OwnedBy: cfg.Name})
	}
	s.writeJSON(w, http.StatusOK, list)
}

// writeHeader sends the status and counts it.
func (s *Server) writeHeader(w http.ResponseWriter, code int) {
	s.stats.status(code)
	w.WriteHeader(code)
}

func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	s.writeHeader(w, code)
	_ = json.NewEncoder(w).Encode(v)
}

// error answers with an OpenAI-style error body; empty param and code are
// sent as null.
func (s *Server) error(w http.ResponseWriter, status int, msg, typ, param, code string) {
	s.stats.status(status)
	writeError(w, status, msg, typ, param, code)
}

func writeError(w http.ResponseWriter, status int, msg, typ, param, code string) {
	type apiError struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	e := apiError{Message: msg, Type: typ}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error apiError `json:"error"`
	}{e})
}
