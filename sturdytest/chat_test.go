package sturdytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChatCompletionShape(t *testing.T) {
	s, c := start(t, Config{Name: "primary", Models: []string{"gpt-4o", "gpt-4o-mini"}})
	resp, body := do(t, c, s.URL(), chatBody("gpt-4o-mini", false, "12345678", "1234"))
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "primary", resp.Header.Get("X-Fakellm-Server"))

	var out struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		Model   string `json:"model"`
		Choices []struct {
			Index   int `json:"index"`
			Message struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	assert.True(t, strings.HasPrefix(out.ID, "chatcmpl-"), out.ID)
	assert.Equal(t, "chat.completion", out.Object)
	assert.NotZero(t, out.Created)
	assert.Equal(t, "gpt-4o-mini", out.Model)
	require.Len(t, out.Choices, 1)
	assert.Equal(t, "assistant", out.Choices[0].Message.Role)
	assert.Equal(t, "Hello from primary, this is gpt-4o-mini speaking.", out.Choices[0].Message.Content)
	assert.Equal(t, "stop", out.Choices[0].FinishReason)
	assert.Equal(t, 3, out.Usage.PromptTokens) // ceil(8/4) + ceil(4/4)
	assert.Equal(t, (len(out.Choices[0].Message.Content)+3)/4, out.Usage.CompletionTokens)
	assert.Equal(t, out.Usage.PromptTokens+out.Usage.CompletionTokens, out.Usage.TotalTokens)

	st := s.Stats()
	assert.Equal(t, int64(1), st.ByModel["gpt-4o-mini"])
	assert.Equal(t, int64(1), st.ByStatus[200])
}

func TestReplyAndContentParts(t *testing.T) {
	s := NewLLM(Config{Reply: "fixed answer", ContextWindow: 2})
	body := []byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"abcd"},{"type":"text","text":"efgh"}]}]}`)
	rec := serve(s, body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"content":"fixed answer"`)
	assert.Contains(t, rec.Body.String(), `"prompt_tokens":2`)

	body = []byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"abcd"},{"type":"text","text":"efghi"}]}]}`)
	assert.Equal(t, http.StatusBadRequest, serve(s, body).Code)
}

func TestModels(t *testing.T) {
	s, c := start(t, Config{Name: "a", Models: []string{"m1", "m2"}})
	resp, err := c.Get(s.URL() + "/v1/models")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			OwnedBy string `json:"owned_by"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	assert.Equal(t, "list", list.Object)
	require.Len(t, list.Data, 2)
	assert.Equal(t, "m1", list.Data[0].ID)
	assert.Equal(t, "model", list.Data[0].Object)
	assert.Equal(t, "a", list.Data[1].OwnedBy)

	r, b := do(t, c, s.URL(), chatBody("other", false))
	assert.Equal(t, http.StatusNotFound, r.StatusCode)
	assert.Equal(t, "model_not_found", *decodeError(t, b).Error.Code)
	assert.Equal(t, int64(1), s.Stats().ByModel["other"])
}

func TestContextLengthExceeded(t *testing.T) {
	s, c := start(t, Config{ContextWindow: 10})
	resp, body := do(t, c, s.URL(), chatBody("m", false, strings.Repeat("x", 41), "abc"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	// 41 chars -> 11 tokens, 3 chars -> 1 token.
	want := `{"error":{"message":"This model's maximum context length is 10 tokens. However, your messages resulted in 12 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`
	assert.Equal(t, want, strings.TrimSpace(string(body)))

	resp, _ = do(t, c, s.URL(), chatBody("m", false, strings.Repeat("x", 40)))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestAPIKeyAndCredentials(t *testing.T) {
	s, c := start(t, Config{RequiredAPIKey: "sk-good-key-1234"})
	url := s.URL()

	r, b := do(t, c, url, chatBody("m", false))
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	e := decodeError(t, b)
	assert.Equal(t, "invalid_request_error", e.Error.Type)
	assert.Equal(t, "invalid_api_key", *e.Error.Code)

	r, b = do(t, c, url, chatBody("m", false), "Authorization", "Bearer sk-other-provider-9999")
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	assert.NotContains(t, string(b), "sk-other-provider-9999", "the key is masked in the message")

	r, _ = do(t, c, url, chatBody("m", false), "Authorization", "Bearer sk-good-key-1234")
	assert.Equal(t, http.StatusOK, r.StatusCode)
	r, _ = do(t, c, url, chatBody("m", false), "api-key", "sk-good-key-1234")
	assert.Equal(t, http.StatusOK, r.StatusCode)

	resp, err := c.Get(url + "/v1/models")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, err = c.Get(url + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "health needs no key")

	assert.Equal(t, []string{"sk-other-provider-9999", "sk-good-key-1234"}, s.SeenCredentials())
	st := s.Stats()
	assert.Equal(t, int64(1), st.ForeignCredentials)
	assert.Equal(t, int64(3), st.ByStatus[401])

	s.Reset()
	assert.Empty(t, s.SeenCredentials())
}

func TestBadRequests(t *testing.T) {
	s := NewLLM(Config{MaxBodyBytes: 64})
	rec := serve(s, []byte(`{"model":"m","messages":[{"role":"user","content":"`+strings.Repeat("x", 100)+`"}]}`))
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	assert.Equal(t, http.StatusBadRequest, serve(s, []byte(`{not json`)).Code)
	assert.Equal(t, http.StatusBadRequest, serve(s, []byte(`{"messages":[]}`)).Code)

	res := httptestGet(s, "/v1/nothing")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	st := s.Stats()
	assert.Equal(t, int64(4), st.Requests)
	assert.Equal(t, int64(1), st.ByPath["other"])
	assert.Equal(t, int64(3), st.ByPath[pathChat])
}

func httptestGet(s *Server, path string) *http.Response {
	rec := newRecorder()
	s.ServeHTTP(rec, mustGet(path))
	res := rec.Result()
	_, _ = io.Copy(io.Discard, res.Body)
	return res
}

func TestEmbeddings(t *testing.T) {
	s := NewLLM(Config{Models: []string{"embed-a"}})
	defer s.Close()
	do := func(body string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/embeddings", strings.NewReader(body)))
		return w
	}
	w := do(`{"model":"embed-a","input":["abcd","abcdefgh"]}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var out struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
		Model string `json:"model"`
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
	assert.Len(t, out.Data, 2)
	assert.Equal(t, 1, out.Data[1].Index)
	assert.Equal(t, "embed-a", out.Model)
	assert.Equal(t, 3, out.Usage.PromptTokens)
	assert.Equal(t, http.StatusNotFound, do(`{"model":"other","input":"x"}`).Code)
	assert.Equal(t, http.StatusBadRequest, do(`{"model":"embed-a","input":3}`).Code)
	assert.Equal(t, map[string]int64{"embed-a": 2, "other": 1}, s.Stats().ByModel)
}
