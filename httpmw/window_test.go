package httpmw

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/sturdytest"
)

// The must-show: with the windows left at zero (as in the quick
// start), a 400 that names the context window falls back instead of being
// returned as is; the window is learned for the tier, and a later call
// skips a tier known to be smaller than the one that refused it.
func TestContextWindowsLearnedFromErrors(t *testing.T) {
	// chatBody's prompt is 3 tokens by sturdytest's estimate.
	small := startLLM(t, sturdytest.Config{Name: "small", ContextWindow: 2})
	smaller := startLLM(t, sturdytest.Config{Name: "smaller", ContextWindow: 1})
	big := startLLM(t, sturdytest.Config{Name: "big"})
	tr := newTr(t,
		WithTier(degrade.Tier{Name: "8k", Model: "m-8k"}, ep("small", small.URL(), "")),
		WithTier(degrade.Tier{Name: "4k", Model: "m-4k"}, ep("smaller", smaller.URL(), "")),
		WithTier(degrade.Tier{Name: "128k", Model: "m-128k"}, ep("big", big.URL(), "")))

	resp, err := tr.RoundTrip(chatReq(t, "m-8k", false))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "128k", resp.Header.Get(HeaderTier), "fell back past both windows, neither configured")
	assert.EqualValues(t, 1, smaller.Stats().Requests, "the 4k tier's window was unknown: it was tried")
	assert.Equal(t, 2, tr.chain.LearnedWindow(0))
	assert.Equal(t, 1, tr.chain.LearnedWindow(1))

	resp, err = tr.RoundTrip(chatReq(t, "m-8k", false))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, "128k", resp.Header.Get(HeaderTier))
	assert.EqualValues(t, 2, small.Stats().Requests)
	assert.EqualValues(t, 1, smaller.Stats().Requests, "the 4k tier, learned smaller than the 8k one's window, was skipped")
	assert.EqualValues(t, 2, big.Stats().Requests)
}

// A stream whose server sent 200 and then an error event instead of the
// answer (vLLM's streaming error) has reached the caller with nothing yet:
// the call falls back as the event says.
func TestContextLengthErrorInsideAStreamFallsBack(t *testing.T) {
	vllm := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "data: {\"error\": {\"message\": \"This model's maximum context length is 4096 tokens. However, you requested 4297 tokens (4097 in the messages, 200 in the completion). Please reduce the length of the messages or completion.\", \"type\": \"BadRequestError\", \"param\": null, \"code\": 400}}\n\ndata: [DONE]\n\n")
	})
	big := startLLM(t, sturdytest.Config{Name: "big"})
	tr := newTr(t,
		WithTier(degrade.Tier{Name: "4k", Model: "m-4k"}, ep("vllm", vllm.URL, "")),
		WithTier(degrade.Tier{Name: "128k", Model: "m-128k"}, ep("big", big.URL(), "")))
	resp, err := tr.RoundTrip(chatReq(t, "m-4k", true))
	require.NoError(t, err)
	body := readAll(t, resp)
	assert.Equal(t, "128k", resp.Header.Get(HeaderTier))
	assert.Contains(t, body, "data: [DONE]")
	assert.NotContains(t, body, "maximum context length", "the error event never reached the caller")
	assert.Equal(t, 4096, tr.chain.LearnedWindow(0))
	assert.Equal(t, 1, vllm.count(), "too large is not retried on the same tier")
}

// An overloaded_error event at the start of a 200 stream (Anthropic's
// shape) fails over to another endpoint of the tier.
func TestOverloadedEventInsideAStreamFailsOver(t *testing.T) {
	anthropic := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n")
	})
	ok := startLLM(t, sturdytest.Config{Name: "ok"})
	tr := newTr(t, WithTier(degrade.Tier{}, ep("anthropic", anthropic.URL, ""), ep("ok", ok.URL(), "")))
	resp, err := tr.RoundTrip(chatReq(t, "m", true))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, "ok", resp.Header.Get(HeaderEndpoint))
	assert.Equal(t, 1, anthropic.count())
}
