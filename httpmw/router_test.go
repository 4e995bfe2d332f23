package httpmw

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/degrade"
)

type fleetRecs map[string]*memRec

func (f fleetRecs) ep(mt *memTransport, name, model string) Endpoint {
	f[name] = &memRec{h: okJSON}
	return Endpoint{Endpoint: sturdy.Endpoint{Name: name, Address: mt.add(f[name]), Model: model},
		Header: http.Header{"Authorization": {"Bearer key-of-" + name}}}
}

// twoGroups is a chat group (gpt-4o, alias "smart", falling back to
// gpt-4o-mini) and an embeddings group, over one Router.
func twoGroups(t *testing.T, mt *memTransport, f fleetRecs, extra ...Group) *Router {
	groups := append([]Group{
		{Name: "gpt-4o", Aliases: []string{"smart"}, Options: []Option{
			WithTier(degrade.Tier{Name: "gpt-4o", Model: "gpt-4o"}, f.ep(mt, "azure-4o", "prod-4o"), f.ep(mt, "openai-4o", "")),
			WithTier(degrade.Tier{Name: "mini", Model: "gpt-4o-mini"}, f.ep(mt, "openai-mini", "")),
		}},
		{Name: "text-embedding-3-small", Options: []Option{
			WithTier(degrade.Tier{Name: "embed", Model: "text-embedding-3-small"}, f.ep(mt, "azure-embed", "prod-embed"), f.ep(mt, "openai-embed", "")),
		}},
	}, extra...)
	r, err := NewRouter(mt, groups, testOpts()...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func post(t *testing.T, path, body string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, "http://llm.invalid"+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer caller-key")
	return req
}

func TestRouterRoutesByModel(t *testing.T) {
	mt := newMemTransport(t)
	f := fleetRecs{}
	r := twoGroups(t, mt, f)
	for range 2 {
		for _, req := range []*http.Request{
			post(t, "/v1/chat/completions", `{"messages":[],"model":"gpt-4o"}`),
			post(t, "/v1/chat/completions", `{"model":"smart","messages":[]}`),
			post(t, "/v1/embeddings", `{"model":"text-embedding-3-small","input":"x"}`),
		} {
			resp, err := r.RoundTrip(req)
			require.NoError(t, err)
			assert.Same(t, req, resp.Request)
			readAll(t, resp)
		}
	}
	// Chat went to the chat group only, embeddings to the embeddings group.
	assert.Equal(t, 4, f["azure-4o"].count()+f["openai-4o"].count())
	assert.Equal(t, 2, f["azure-embed"].count()+f["openai-embed"].count())
	assert.Zero(t, f["openai-mini"].count())
	for name, rec := range f {
		for i := range rec.count() {
			b := string(rec.body(i))
			assert.Equal(t, "Bearer key-of-"+name, rec.header(i).Get("Authorization"), "each endpoint its own credential")
			switch name {
			case "azure-4o":
				assert.Contains(t, b, `"model":"prod-4o"`, "the deployment's name")
			case "openai-4o":
				assert.Contains(t, b, `"model":"gpt-4o"`, "the alias is rewritten to the group's model")
			case "azure-embed":
				assert.Contains(t, b, `"model":"prod-embed"`)
			case "openai-embed":
				assert.Contains(t, b, `"model":"text-embedding-3-small"`)
			}
		}
	}
}

// A group fails over and falls back within itself only.
func TestRouterFallsBackWithinGroup(t *testing.T) {
	mt := newMemTransport(t)
	f := fleetRecs{}
	r := twoGroups(t, mt, f)
	f["azure-4o"].h, f["openai-4o"].h = status(503), status(503)
	resp, err := r.RoundTrip(post(t, "/v1/chat/completions", `{"model":"gpt-4o"}`))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, "openai-mini", resp.Header.Get(HeaderEndpoint))
	assert.Contains(t, string(f["openai-mini"].body(0)), `"model":"gpt-4o-mini"`)

	f["azure-embed"].h, f["openai-embed"].h = status(503), status(503)
	resp, err = r.RoundTrip(post(t, "/v1/embeddings", `{"model":"text-embedding-3-small","input":"x"}`))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "no chat fallback for embeddings")
	assert.Equal(t, 1, f["openai-mini"].count())
	assert.Equal(t, 1, f["openai-mini"].count())
	assert.Equal(t, []string{"gpt-4o", "text-embedding-3-small"}, r.Groups())
	assert.EqualValues(t, 1, r.Group("gpt-4o").Stats().Served[1])
}

func TestRouterUnknownModel(t *testing.T) {
	mt := newMemTransport(t)
	f := fleetRecs{}
	r := twoGroups(t, mt, f)
	for _, req := range []*http.Request{
		post(t, "/v1/chat/completions", `{"model":"o3"}`),
		post(t, "/v1/chat/completions", `not json`),
	} {
		resp, err := r.RoundTrip(req)
		require.Nil(t, resp)
		var se *sturdy.Error
		require.True(t, errors.As(err, &se), "%v", err)
		assert.Equal(t, sturdy.Fatal, se.Class)
		assert.ErrorIs(t, err, ErrNoGroup)
	}
	resp, err := r.RoundTrip(post(t, "/v1/chat/completions", `{"model":"o3"}`))
	require.Nil(t, resp)
	assert.Contains(t, err.Error(), `"o3" (groups: gpt-4o, text-embedding-3-small)`)

	// With a pass-through group, the rest goes there as written.
	pass := fleetRecs{}
	r = twoGroups(t, mt, fleetRecs{}, Group{Name: "*", Options: []Option{WithTier(degrade.Tier{}, pass.ep(mt, "gateway", ""))}})
	resp, err = r.RoundTrip(post(t, "/v1/chat/completions", `{"model":"o3"}`))
	require.NoError(t, err)
	readAll(t, resp)
	req, _ := http.NewRequest(http.MethodGet, "http://llm.invalid/v1/models", nil)
	resp, err = r.RoundTrip(req)
	require.NoError(t, err)
	readAll(t, resp)
	require.Equal(t, 2, pass["gateway"].count())
	assert.Equal(t, `{"model":"o3"}`, string(pass["gateway"].body(0)))
}

func TestRouterRejectsBadConfiguration(t *testing.T) {
	good := func(name string) []Option {
		return []Option{WithTier(degrade.Tier{}, URL(name, "http://127.0.0.1:1", nil))}
	}
	for _, tc := range []struct {
		name   string
		groups []Group
		want   string
	}{
		{"none", nil, "no groups"},
		{"no name", []Group{{Options: good("a")}}, "group #1 has no Name"},
		{"bad group", []Group{{Name: "m"}}, `group "m" (#1): no tiers`},
		{"endpoint in two groups", []Group{{Name: "m", Options: good("a")}, {Name: "n", Options: good("a")}}, `endpoint name "a" is used in group "m" (#1) too`},
		{"model twice", []Group{{Name: "m", Options: good("a")}, {Name: "n", Aliases: []string{"m"}, Options: good("b")}}, `model name "m" is already`},
		{"two pass-throughs", []Group{{Name: "*", Options: good("a")}, {Name: "*", Options: good("b")}}, "another pass-through"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRouter(nil, tc.groups)
			require.Error(t, err)
			assert.Nil(t, r)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// The body is read once into a buffer of its size, and replayed to every
// attempt from it (here: a failover).
func TestRouterUnreplayableBody(t *testing.T) {
	mt := newMemTransport(t)
	f := fleetRecs{}
	r := twoGroups(t, mt, f)
	f["azure-4o"].h = status(503)
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("x", 1<<16) + `"}]}`
	req, err := http.NewRequest(http.MethodPost, chatPath, struct{ *bytes.Reader }{bytes.NewReader([]byte(body))})
	require.NoError(t, err)
	require.Nil(t, req.GetBody)
	resp, err := r.RoundTrip(req)
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Len(t, f["openai-4o"].body(0), len(body))
}

// WithGroupKey reads the model elsewhere than the JSON body: here a
// header, for a body that is not JSON.
func TestRouterGroupKey(t *testing.T) {
	mt := newMemTransport(t)
	f := fleetRecs{}
	r, err := NewRouter(mt, []Group{
		{Name: "whisper", Options: []Option{WithTier(degrade.Tier{}, f.ep(mt, "audio", ""))}},
		{Name: "tts", Options: []Option{WithTier(degrade.Tier{}, f.ep(mt, "speech", ""))}},
	}, WithGroupKey(func(req *http.Request, _ []byte) string { return req.Header.Get("X-Model") }))
	require.NoError(t, err)
	defer r.Close()
	req := post(t, "/v1/audio/transcriptions", "--multipart--")
	req.Header.Set("X-Model", "whisper")
	resp, err := r.RoundTrip(req)
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, 1, f["audio"].count())
	assert.Equal(t, "--multipart--", string(f["audio"].body(0)))
	_, err = r.RoundTrip(post(t, "/v1/audio/speech", `{"model":"whisper"}`))
	assert.ErrorIs(t, err, ErrNoGroup, "the key says no model: the body's is not read")
}
