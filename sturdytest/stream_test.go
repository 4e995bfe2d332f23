package sturdytest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type streamChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

func openStream(t *testing.T, c *http.Client, url string, body []byte) *http.Response {
	t.Helper()
	resp, err := c.Do(newChatRequest(t, url, body))
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	return resp
}

func TestStreamChunks(t *testing.T) {
	const delay = 3 * time.Millisecond
	s, c := start(t, Config{Name: "s", Reply: "one two three four", ChunkDelay: delay})
	begin := time.Now()
	resp := openStream(t, c, s.URL(), chatBody("gpt-x", true, "abcdabcd"))
	events, at, err := readEvents(resp.Body)
	require.NoError(t, err)

	// role, 4 words, finish, usage, [DONE]
	require.Len(t, events, 8, events)
	assert.Equal(t, "[DONE]", events[len(events)-1])
	var content strings.Builder
	var chunks []streamChunk
	for _, e := range events[:len(events)-1] {
		var ch streamChunk
		require.NoError(t, json.Unmarshal([]byte(e), &ch), e)
		assert.Equal(t, "chat.completion.chunk", ch.Object)
		assert.Equal(t, "gpt-x", ch.Model)
		chunks = append(chunks, ch)
		if len(ch.Choices) > 0 {
			content.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	assert.Equal(t, "assistant", chunks[0].Choices[0].Delta.Role)
	assert.Equal(t, "one two three four", content.String())
	for _, ch := range chunks[1:] {
		assert.Equal(t, chunks[0].ID, ch.ID)
	}
	finish := chunks[5]
	require.NotNil(t, finish.Choices[0].FinishReason)
	assert.Equal(t, "stop", *finish.Choices[0].FinishReason)
	assert.Nil(t, chunks[4].Choices[0].FinishReason)
	last := chunks[6]
	assert.Empty(t, last.Choices)
	require.NotNil(t, last.Usage)
	assert.Equal(t, 2, last.Usage.PromptTokens)
	assert.Equal(t, 5, last.Usage.CompletionTokens)
	assert.Equal(t, 7, last.Usage.TotalTokens)

	// The events are spread over the chunk delays: the last cannot come
	// before six of them have passed since the request. (Measured from the
	// first event's arrival instead, a reader delayed on a busy machine
	// shortens the span.)
	assert.GreaterOrEqual(t, at[len(at)-1].Sub(begin), 6*delay)
}

func TestStreamWithoutUsage(t *testing.T) {
	s := NewLLM(Config{Reply: "a b"})
	rec := serve(s, []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	require.Equal(t, http.StatusOK, rec.Code)
	events, _, err := readEvents(rec.Body)
	require.NoError(t, err)
	require.Len(t, events, 5) // role, a, b, finish, [DONE]
	assert.NotContains(t, rec.Body.String(), `"usage"`)
}

func TestTruncatedStreamLacksDone(t *testing.T) {
	s, c := start(t, Config{TruncateStream: true})
	resp := openStream(t, c, s.URL(), chatBody("m", true))
	events, _, err := readEvents(resp.Body)
	require.NoError(t, err, "the stream ends cleanly")
	require.NotEmpty(t, events)
	assert.NotContains(t, events, "[DONE]")
	assert.Contains(t, events[len(events)-1], `"usage"`)
}

func TestMidStreamCut(t *testing.T) {
	s, c := start(t, Config{MidStreamCut: 2, Reply: "one two three four"})
	resp := openStream(t, c, s.URL(), chatBody("m", true))
	events, _, err := readEvents(resp.Body)
	require.Error(t, err)
	assert.True(t, errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
	assert.Len(t, events, 2)
	assert.Equal(t, int64(1), s.Stats().Aborted)

	// A cut beyond the last chunk still cuts before [DONE].
	s.Update(func(c *Config) { c.MidStreamCut = 100 })
	resp = openStream(t, c, s.URL(), chatBody("m", true))
	events, _, err = readEvents(resp.Body)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.NotContains(t, events, "[DONE]")
	assert.Len(t, events, 7)
}

func TestSlowHeadersAndSlowFirstByte(t *testing.T) {
	const d = 30 * time.Millisecond
	s, c := start(t, Config{SlowHeaders: d})
	t0 := time.Now()
	resp, _ := do(t, c, s.URL(), chatBody("m", false))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(t0), d)

	for _, stream := range []bool{false, true} {
		s.Update(func(c *Config) { c.SlowHeaders = 0; c.SlowFirstByte = d })
		t0 = time.Now()
		resp, err := c.Do(newChatRequest(t, s.URL(), chatBody("m", stream)))
		require.NoError(t, err)
		headers := time.Since(t0)
		first := make([]byte, 1)
		_, err = io.ReadFull(resp.Body, first)
		require.NoError(t, err)
		body := time.Since(t0)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		assert.GreaterOrEqual(t, body, d, "stream=%v", stream)
		assert.GreaterOrEqual(t, body-headers, d/2, "stream=%v: headers came before the wait", stream)
	}
}
