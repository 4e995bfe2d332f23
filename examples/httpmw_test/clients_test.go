// Package httpmw_test runs the official openai-go client and
// sashabaranov/go-openai through an httpmw.Transport against fake
// inference servers with faults (sturdytest), on loopback.
package httpmw_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/sturdytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The clients' base URL only supplies the path: the Transport replaces
// the host with the picked endpoint's and the key with the endpoint's.
const clientBase = "http://llm.invalid/v1/"

func startLLM(t *testing.T, cfg sturdytest.Config) *sturdytest.Server {
	t.Helper()
	s, err := sturdytest.StartLLM(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func endpoint(s *sturdytest.Server, key string) httpmw.Endpoint {
	return httpmw.URL(s.Name(), s.URL(), http.Header{"Authorization": {"Bearer " + key}})
}

func newTransport(t *testing.T, opts ...httpmw.Option) *httpmw.Transport {
	t.Helper()
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	all := append([]httpmw.Option{
		httpmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1}),
		httpmw.WithFailover(failover.Config{BaseBackoff: -1, BudgetRatio: -1, MaxRetryAfterWait: -1}),
		httpmw.WithHealth(health.Config{ConsecutiveFailures: -1, FailureRate: -1}),
	}, opts...)
	tr, err := httpmw.NewTransport(base, all...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// client is what a test needs of either SDK.
type client interface {
	chat(ctx context.Context, model string) (model2 string, err error)
	stream(ctx context.Context, model string) (text string, err error)
}

type officialClient struct{ c openai.Client }

func newOfficial(tr http.RoundTripper) client {
	return officialClient{openai.NewClient(
		option.WithHTTPClient(&http.Client{Transport: tr}),
		option.WithBaseURL(clientBase),
		option.WithAPIKey("client-key-never-sent"),
		option.WithMaxRetries(0), // sturdy retries; the client must not
	)}
}

func (o officialClient) chat(ctx context.Context, model string) (string, error) {
	res, err := o.c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	})
	if err != nil {
		return "", err
	}
	return res.Model, nil
}

func (o officialClient) stream(ctx context.Context, model string) (string, error) {
	s := o.c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	})
	defer s.Close()
	var b strings.Builder
	for s.Next() {
		for _, c := range s.Current().Choices {
			b.WriteString(c.Delta.Content)
		}
	}
	return b.String(), s.Err()
}

type goClient struct{ c *goopenai.Client }

func newGoOpenAI(tr http.RoundTripper) client {
	cfg := goopenai.DefaultConfig("client-key-never-sent")
	cfg.BaseURL = strings.TrimSuffix(clientBase, "/")
	cfg.HTTPClient = &http.Client{Transport: tr} // go-openai has no retries of its own
	return goClient{goopenai.NewClientWithConfig(cfg)}
}

func (g goClient) chat(ctx context.Context, model string) (string, error) {
	res, err := g.c.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
		Model:    model,
		Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Say hello"}},
	})
	if err != nil {
		return "", err
	}
	return res.Model, nil
}

func (g goClient) stream(ctx context.Context, model string) (string, error) {
	s, err := g.c.CreateChatCompletionStream(ctx, goopenai.ChatCompletionRequest{
		Model:    model,
		Stream:   true,
		Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Say hello"}},
	})
	if err != nil {
		return "", err
	}
	defer s.Close()
	var b strings.Builder
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		for _, c := range r.Choices {
			b.WriteString(c.Delta.Content)
		}
	}
}

var clients = []struct {
	name string
	new  func(http.RoundTripper) client
}{
	{"openai-go", newOfficial},
	{"go-openai", newGoOpenAI},
}

func TestClientsSucceedWithOneEndpointDown(t *testing.T) {
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			down := startLLM(t, sturdytest.Config{Name: "down", Down: sturdytest.Down503})
			reset := startLLM(t, sturdytest.Config{Name: "reset", Down: sturdytest.DownReset})
			up := startLLM(t, sturdytest.Config{Name: "up"})
			tr := newTransport(t, httpmw.WithTier(degrade.Tier{},
				endpoint(down, "k"), endpoint(reset, "k"), endpoint(up, "k")))
			c := cl.new(tr)
			ctx := context.Background()
			for range 6 {
				model, err := c.chat(ctx, "gpt-4o")
				require.NoError(t, err)
				assert.Equal(t, "gpt-4o", model)
				text, err := c.stream(ctx, "gpt-4o")
				require.NoError(t, err)
				assert.Contains(t, text, "Hello from up")
			}
			assert.Positive(t, down.Stats().ByStatus[503])
			assert.Positive(t, reset.Stats().Aborted)
		})
	}
}

func TestClientsRateLimitedPrimaryServedByFallbackModel(t *testing.T) {
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			primary := startLLM(t, sturdytest.Config{Name: "primary", RateLimit: sturdytest.RateLimit{Always: true, RetryAfter: time.Minute}})
			fallback := startLLM(t, sturdytest.Config{Name: "fallback", Models: []string{"gpt-4o-mini"}})
			tr := newTransport(t,
				httpmw.WithTier(degrade.Tier{Name: "primary", Model: "gpt-4o"}, endpoint(primary, "k")),
				httpmw.WithTier(degrade.Tier{Name: "fallback", Model: "gpt-4o-mini"}, endpoint(fallback, "k")))
			c := cl.new(tr)
			ctx := context.Background()
			for range 3 {
				model, err := c.chat(ctx, "gpt-4o")
				require.NoError(t, err)
				assert.Equal(t, "gpt-4o-mini", model, "the fallback model answered")
				text, err := c.stream(ctx, "gpt-4o")
				require.NoError(t, err)
				assert.Contains(t, text, "gpt-4o-mini")
			}
			assert.EqualValues(t, 6, fallback.Stats().ByModel["gpt-4o-mini"], "the fallback server saw its own model")
			assert.EqualValues(t, 1, primary.Stats().ByStatus[429], "one 429, then the tier cools down")
		})
	}
}

func TestClientsSeeTruncatedStreamAsError(t *testing.T) {
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			srv := startLLM(t, sturdytest.Config{Name: "trunc", TruncateStream: true})
			tr := newTransport(t, httpmw.WithTier(degrade.Tier{}, endpoint(srv, "k")))
			_, err := cl.new(tr).stream(context.Background(), "gpt-4o")
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		})
	}
}

func TestClientsFailOverSlowFirstByteWithinTTFB(t *testing.T) {
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			slow := startLLM(t, sturdytest.Config{Name: "slow", SlowFirstByte: 5 * time.Second})
			ok := startLLM(t, sturdytest.Config{Name: "ok"})
			tr := newTransport(t, httpmw.WithTTFBTimeout(500*time.Millisecond), httpmw.WithResponseTimeout(500*time.Millisecond),
				httpmw.WithTier(degrade.Tier{}, endpoint(slow, "k"), endpoint(ok, "k")))
			c := cl.new(tr)
			for range 2 {
				start := time.Now()
				text, err := c.stream(context.Background(), "gpt-4o")
				require.NoError(t, err)
				assert.Contains(t, text, "Hello from ok")
				assert.Less(t, time.Since(start), 2*time.Second)
				start = time.Now()
				_, err = c.chat(context.Background(), "gpt-4o")
				require.NoError(t, err)
				assert.Less(t, time.Since(start), 2*time.Second)
			}
			assert.Positive(t, slow.Stats().Requests, "the slow endpoint was tried")
		})
	}
}

func TestClientsCredentialsStayWithTheirServer(t *testing.T) {
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			a := startLLM(t, sturdytest.Config{Name: "a", RequiredAPIKey: "key-a", ErrorRate: 0.5, Seed: 1})
			b := startLLM(t, sturdytest.Config{Name: "b", RequiredAPIKey: "key-b", RateLimit: sturdytest.RateLimit{Share: 0.5}, Seed: 2})
			c := startLLM(t, sturdytest.Config{Name: "c", RequiredAPIKey: "key-c"})
			tr := newTransport(t,
				httpmw.WithTier(degrade.Tier{Name: "p"}, endpoint(a, "key-a"),
					httpmw.URL("b", b.URL(), http.Header{"Api-Key": {"key-b"}})),
				httpmw.WithTier(degrade.Tier{Name: "f", Model: "small"}, endpoint(c, "key-c")))
			cli := cl.new(tr)
			for range 12 {
				_, err := cli.chat(context.Background(), "gpt-4o")
				require.NoError(t, err)
				_, err = cli.stream(context.Background(), "gpt-4o")
				require.NoError(t, err)
			}
			for _, s := range []*sturdytest.Server{a, b, c} {
				assert.Equal(t, []string{"key-" + s.Name()}, s.SeenCredentials(), "server %s", s.Name())
				assert.Zero(t, s.Stats().ForeignCredentials)
				assert.Zero(t, s.Stats().ByStatus[401])
			}
		})
	}
}
