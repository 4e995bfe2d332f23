package httpmw

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
)

func TestFailedCallWithoutAnswer(t *testing.T) {
	down := closedURL(t)
	plain := newTr(t, WithTier(degrade.Tier{}, ep("down", down, "")))
	always := newTr(t, WithTier(degrade.Tier{}, ep("down", down, "")), WithErrorResponses())

	t.Run("a plain client gets the error", func(t *testing.T) {
		resp, err := plain.RoundTrip(chatReq(t, "m", false))
		require.Nil(t, resp)
		se, ok := err.(*sturdy.Error)
		require.True(t, ok, "%v", err)
		assert.Equal(t, sturdy.Unavailable, se.Class)
	})
	for name, c := range map[string]struct {
		tr  *Transport
		hdr bool
	}{"a client that retries gets a final response": {plain, true}, "WithErrorResponses": {always, false}} {
		t.Run(name, func(t *testing.T) {
			req := chatReq(t, "m", false)
			if c.hdr {
				req.Header.Set(HeaderRetryCount, "0")
			}
			resp, err := c.tr.RoundTrip(req)
			require.NoError(t, err)
			assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
			assert.Equal(t, "false", resp.Header.Get(HeaderShouldRetry))
			assert.Equal(t, "down:unavailable, down:unavailable, down:unavailable", resp.Header.Get(HeaderAttempts))
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			var e struct {
				Error struct{ Message, Type, Code string }
			}
			require.NoError(t, json.Unmarshal(b, &e), "%s", b)
			assert.Equal(t, "unavailable", e.Error.Code)
			assert.Equal(t, "sturdy_error", e.Error.Type)
			assert.Contains(t, e.Error.Message, "unavailable on down")
			se := CallError(resp)
			require.NotNil(t, se)
			assert.Len(t, se.Attempts, 3)
			assert.Equal(t, req.URL, resp.Request.URL, "the response's Request is the caller's, with the error in its context")
		})
	}
	t.Run("a cancelled call gets its error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := chatReq(t, "m", false).WithContext(ctx)
		req.Header.Set(HeaderRetryCount, "0")
		resp, err := always.RoundTrip(req)
		require.Nil(t, resp)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestCallErrorOnAServersAnswer(t *testing.T) {
	rec := newRecorder(t, status(503))
	tr := newTr(t, WithTier(degrade.Tier{}, ep("a", rec.URL, "")))
	resp, err := tr.RoundTrip(chatReq(t, "m", false))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, 503, resp.StatusCode)
	se := CallError(resp)
	require.NotNil(t, se, "the last attempt's answer carries the call's error")
	assert.Equal(t, sturdy.Unavailable, se.Class)
	assert.Len(t, se.Attempts, 3)

	ok := newRecorder(t, okJSON)
	tr = newTr(t, WithTier(degrade.Tier{}, ep("ok", ok.URL, "")))
	resp, err = tr.RoundTrip(chatReq(t, "m", false))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Nil(t, CallError(resp), "a success has none")
	assert.Nil(t, CallError(nil))
}

func TestErrorStatusByClass(t *testing.T) {
	for c, want := range map[sturdy.Class]int{sturdy.Unavailable: 502, sturdy.Timeout: 504, sturdy.Overloaded: 429, sturdy.TooLarge: 413, sturdy.Fatal: 502, sturdy.Auth: 502} {
		assert.Equal(t, want, errorStatus(c), c.String())
	}
}

// A Router hands the final error response on with the call's error: a
// client that retries gets one answer, and CallError its attempts.
func TestCallErrorThroughARouter(t *testing.T) {
	down := closedURL(t)
	r, err := NewRouter(newBase(t), []Group{
		{Name: "m", Options: []Option{WithTier(degrade.Tier{}, ep("down", down, ""))}},
	}, testOpts()...)
	require.NoError(t, err)
	defer r.Close()
	req := chatReq(t, "m", false)
	req.Header.Set(HeaderRetryCount, "0")
	resp, err := r.RoundTrip(req)
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Equal(t, "false", resp.Header.Get(HeaderShouldRetry))
	se := CallError(resp)
	require.NotNil(t, se)
	assert.Len(t, se.Attempts, 3)
	assert.Equal(t, req.URL, resp.Request.URL)
}
