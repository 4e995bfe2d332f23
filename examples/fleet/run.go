package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.yaml.in/yaml/v3"

	"github.com/sturdyai/sturdy/examples/internal/cli"
	"github.com/sturdyai/sturdy/fleet"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/sturdytest"
)

// load reads a YAML fleet description, refusing unknown keys.
func load(path string) (*fleet.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c fleet.Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// fakes starts a local fake for every host the environment does not give,
// each accepting only its own model names and key, and sets the
// environment to point at it.
func fakes() (stop func(), err error) {
	specs := []struct {
		urlVar, keyVar, key string
		models              []string
	}{
		{"OPENAI_URL", "OPENAI_API_KEY", "sk-local-openai", []string{"gpt-4o", "text-embedding-3-small"}},
		{"AZURE_OPENAI_URL", "AZURE_OPENAI_KEY", "local-azure-key", []string{"prod-gpt-4o"}},
		{"VLLM_URL", "", "", []string{"meta-llama/Llama-3.1-8B-Instruct"}},
	}
	var started []*sturdytest.Server
	stop = func() {
		for _, s := range started {
			s.Close()
		}
	}
	for _, sp := range specs {
		if os.Getenv(sp.urlVar) != "" {
			continue
		}
		s, err := sturdytest.StartLLM(sturdytest.Config{Name: strings.ToLower(sp.urlVar), Models: sp.models, RequiredAPIKey: sp.key})
		if err != nil {
			stop()
			return nil, err
		}
		started = append(started, s)
		os.Setenv(sp.urlVar, s.URL())
		if sp.keyVar != "" {
			os.Setenv(sp.keyVar, sp.key)
		}
	}
	return stop, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	path := fs.String("config", "examples/fleet/sturdy.yaml", "the fleet description (YAML)")
	if err := cli.ParseFlags(fs, args, stdout); err != nil {
		return err
	}
	c, err := load(*path)
	if err != nil {
		return cli.UsageError{Err: err}
	}
	stop, err := fakes()
	if err != nil {
		return err
	}
	defer stop()
	r, err := c.Router(nil)
	if err != nil {
		return err
	}
	defer r.Close()

	client := openai.NewClient(option.WithHTTPClient(&http.Client{Transport: r}),
		option.WithBaseURL("http://llm.invalid/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fmt.Fprintf(stdout, "groups: %s\n", strings.Join(r.Groups(), ", "))
	for _, model := range []string{"gpt-4o", "smart"} {
		var resp *http.Response
		res, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
		}, option.WithResponseInto(&resp))
		if err != nil {
			return fmt.Errorf("chat %s: %w", model, err)
		}
		fmt.Fprintf(stdout, "chat %-7s → %-13s tier %-7s model %s\n", model, resp.Header.Get(httpmw.HeaderEndpoint), resp.Header.Get(httpmw.HeaderTier), res.Model)
	}
	s := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	})
	var text strings.Builder
	for s.Next() {
		for _, ch := range s.Current().Choices {
			text.WriteString(ch.Delta.Content)
		}
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	_ = s.Close()
	fmt.Fprintf(stdout, "stream  gpt-4o  → %q\n", text.String())
	emb, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello", "world"}},
	})
	if err != nil {
		return fmt.Errorf("embeddings: %w", err)
	}
	fmt.Fprintf(stdout, "embed   %d vectors of %d from %s\n", len(emb.Data), len(emb.Data[0].Embedding), emb.Model)
	_, err = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "o3",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	})
	fmt.Fprintf(stdout, "chat o3      → %v\n", err)
	return nil
}
