package sturdytest

import (
	"encoding/json"
	"io"
	"net/http"
)

// embeddings answers POST /v1/embeddings with one small vector per input
// (a string or an array of strings), after the model check and the
// configured error rate (ErrorRate; no latency, no rate limit); usage
// counts ceil(len/4) tokens per input.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request, cfg *Config) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes))
	if err != nil {
		s.error(w, http.StatusRequestEntityTooLarge, "Request body too large.", "invalid_request_error", "", "")
		return
	}
	var req struct {
		Model string          `json:"model"`
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Model == "" {
		s.error(w, http.StatusBadRequest, "you must provide a model parameter and a JSON body", "invalid_request_error", "", "")
		return
	}
	s.stats.model(req.Model)
	if !cfg.acceptsModel(req.Model) {
		s.error(w, http.StatusNotFound, "The model `"+req.Model+"` does not exist or you do not have access to it.", "invalid_request_error", "", "model_not_found")
		return
	}
	var inputs []string
	var one string
	if json.Unmarshal(req.Input, &one) == nil {
		inputs = []string{one}
	} else if err := json.Unmarshal(req.Input, &inputs); err != nil || len(inputs) == 0 {
		s.error(w, http.StatusBadRequest, "'input' must be a string or an array of strings", "invalid_request_error", "input", "")
		return
	}
	if p := s.plan(cfg); p.fail {
		s.error(w, http.StatusInternalServerError, "The server had an error while processing your request.", "server_error", "", "")
		return
	}
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float64 `json:"embedding"`
	}
	data := make([]item, len(inputs))
	tokens := 0
	for i, in := range inputs {
		tokens += (len(in) + 3) / 4
		data[i] = item{Object: "embedding", Index: i, Embedding: []float64{float64(len(in)), 0.5, -0.5, 0.25}}
	}
	s.writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}
