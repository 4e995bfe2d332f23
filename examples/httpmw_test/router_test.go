package httpmw_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	goopenai "github.com/sashabaranov/go-openai"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/sturdytest"
)

// deployment is a fake server that accepts only its own model name and
// its own key, so that a request with another's is refused (404, 401).
type deployment struct {
	srv   *sturdytest.Server
	model string // the name it knows the model by
	key   string
}

func newDeployment(t *testing.T, name, model string) *deployment {
	d := &deployment{model: model, key: "key-of-" + name}
	d.srv = startLLM(t, sturdytest.Config{Name: name, Models: []string{model}, RequiredAPIKey: d.key})
	return d
}

// endpoint is d as an endpoint that knows its tier's model as d.model.
func (d *deployment) endpoint() httpmw.Endpoint {
	return httpmw.Endpoint{Endpoint: sturdy.Endpoint{Name: d.srv.Name(), Address: d.srv.URL(), Model: d.model},
		Header: http.Header{"Authorization": {"Bearer " + d.key}}}
}

// A fleet of two groups behind one Router: chat (gpt-4o on an Azure
// deployment and on OpenAI, falling back to gpt-4o-mini) and embeddings
// (an Azure deployment and OpenAI). Both SDKs, chat streaming and not,
// and embeddings: each group fails over and falls back within itself,
// each endpoint gets its own model name and its own key.
func TestOneRouterTwoGroupsBothSDKs(t *testing.T) {
	azure4o := newDeployment(t, "azure-4o", "prod-gpt-4o")
	openai4o := newDeployment(t, "openai-4o", "gpt-4o")
	mini := newDeployment(t, "openai-mini", "gpt-4o-mini")
	azureEmb := newDeployment(t, "azure-embed", "prod-embed-small")
	openaiEmb := newDeployment(t, "openai-embed", "text-embedding-3-small")
	all := []*deployment{azure4o, openai4o, mini, azureEmb, openaiEmb}

	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	r, err := httpmw.NewRouter(base, []httpmw.Group{
		{Name: "gpt-4o", Aliases: []string{"smart"}, Options: []httpmw.Option{
			httpmw.WithTier(degrade.Tier{Name: "gpt-4o", Model: "gpt-4o"}, azure4o.endpoint(), openai4o.endpoint()),
			httpmw.WithTier(degrade.Tier{Name: "gpt-4o-mini", Model: "gpt-4o-mini"}, mini.endpoint()),
		}},
		{Name: "text-embedding-3-small", Options: []httpmw.Option{
			httpmw.WithTier(degrade.Tier{Name: "embed", Model: "text-embedding-3-small"}, azureEmb.endpoint(), openaiEmb.endpoint()),
		}},
	},
		httpmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1}),
		httpmw.WithFailover(failover.Config{BaseBackoff: -1, BudgetRatio: -1}),
		httpmw.WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })

	official, goc := newOfficial(r), newGoOpenAI(r)
	ctx := context.Background()
	embed := func(t *testing.T) {
		t.Helper()
		o := official.(officialClient)
		res, err := o.c.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: "text-embedding-3-small",
			Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")},
		})
		require.NoError(t, err)
		require.Len(t, res.Data, 1)
		g := goc.(goClient)
		gres, err := g.c.CreateEmbeddings(ctx, goopenai.EmbeddingRequest{Model: "text-embedding-3-small", Input: []string{"hello", "world"}})
		require.NoError(t, err)
		require.Len(t, gres.Data, 2)
	}
	chat := func(t *testing.T, model string) {
		t.Helper()
		for _, c := range []client{official, goc} {
			_, err := c.chat(ctx, model)
			require.NoError(t, err)
			text, err := c.stream(ctx, model)
			require.NoError(t, err)
			assert.NotEmpty(t, text)
		}
	}

	// All up: both primaries and both embedders serve, by name or alias.
	chat(t, "gpt-4o")
	chat(t, "smart")
	embed(t)
	assert.Positive(t, azure4o.srv.Stats().ByPath["/v1/chat/completions"])
	assert.Positive(t, openai4o.srv.Stats().ByPath["/v1/chat/completions"])
	assert.Positive(t, azureEmb.srv.Stats().ByPath["/v1/embeddings"])
	assert.Positive(t, openaiEmb.srv.Stats().ByPath["/v1/embeddings"])
	assert.Zero(t, mini.srv.Stats().Requests)

	// The Azure chat deployment goes down: chat fails over to OpenAI;
	// then OpenAI too: chat falls back to mini. Embeddings never do.
	azure4o.srv.SetDown(sturdytest.Down503)
	chat(t, "gpt-4o")
	openai4o.srv.SetDown(sturdytest.Down503)
	chat(t, "gpt-4o")
	assert.Positive(t, mini.srv.Stats().Requests, "the chat group fell back")
	azureEmb.srv.SetDown(sturdytest.Down503)
	embed(t)
	assert.Zero(t, mini.srv.Stats().ByPath["/v1/embeddings"], "embeddings never fall back to a chat model")

	for _, d := range all {
		st := d.srv.Stats()
		for m := range st.ByModel {
			assert.Equal(t, d.model, m, "%s received model %q", d.srv.Name(), m)
		}
		assert.Equal(t, []string{d.key}, d.srv.SeenCredentials(), "%s saw another key", d.srv.Name())
		assert.Zero(t, st.ByStatus[http.StatusNotFound]+st.ByStatus[http.StatusUnauthorized], d.srv.Name())
	}
}
