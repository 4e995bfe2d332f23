package main

import (
	"github.com/sturdyai/sturdy/examples/internal/cli"

	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sturdyai/sturdy/httpmw"
)

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("openai", flag.ContinueOnError)
	local := fs.Bool("local", false, "use local fake servers even when "+envKey+" and "+envPrimaryURLs+" are set")
	prompt := fs.String("prompt", "In one sentence: why do inference clients need failover?", "the user message")
	timeout := fs.Duration("timeout", 60*time.Second, "deadline of each call")
	ttfb := fs.Duration("ttfb", 15*time.Second, "fail over a streaming attempt whose first byte takes longer than this")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: openai [flags]\n\n"+
			"Sends chat completions with openai-go through sturdy's httpmw: two providers of\n"+
			"the primary model and a fallback model.\n\nEnvironment (with %s and %s set, real endpoints;\notherwise local fake servers on 127.0.0.1):\n%s\nFlags:\n", envKey, envPrimaryURLs, envHelp)
		fs.PrintDefaults()
	}
	if err := cli.ParseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *timeout <= 0 || *ttfb <= 0 {
		return cli.UsageError{Err: errors.New("-timeout and -ttfb must be more than 0")}
	}

	var setup *setup
	var err error
	if env := readEnv(); env.real() && !*local {
		setup, err = realSetup(env)
	} else {
		if env.key != "" && !*local {
			fmt.Fprintf(stdout, "note: %s is set but %s is not: using local fake servers\n", envKey, envPrimaryURLs)
		}
		setup, err = fakeSetup()
	}
	if err != nil {
		return err
	}
	defer setup.close()

	opts := []httpmw.Option{
		httpmw.WithTier(setup.primary.Tier, setup.primary.endpoints...),
		httpmw.WithTier(setup.fallback.Tier, setup.fallback.endpoints...),
		httpmw.WithTTFBTimeout(*ttfb),
	}
	if setup.balancer != nil {
		opts = append(opts, httpmw.WithBalancer(*setup.balancer))
	}
	tr, err := httpmw.NewTransport(newAttemptLogger(stdout, setup.primary, setup.fallback), opts...)
	if err != nil {
		return err
	}
	defer tr.Close()
	httpClient := &http.Client{Transport: tr}
	defer httpClient.CloseIdleConnections()

	// The base URL gives the path only: the Transport sends each attempt
	// to the endpoint it picks, with that endpoint's own key. The client's
	// key is dropped, so a placeholder will do.
	//
	// openai-go retries twice by default. Turn that off: the Transport
	// already retries, on another endpoint or model, within its budget.
	// Two layers of retries multiply (3 × 3 attempts against a server that
	// is down) and the outer one retries the same answer the inner one
	// gave up on. The Transport's final error response also carries
	// "X-Should-Retry: false", which openai-go honours.
	client := openai.NewClient(
		option.WithHTTPClient(httpClient),
		option.WithBaseURL("http://sturdy.invalid/v1/"),
		option.WithAPIKey("unused"),
		option.WithMaxRetries(0),
	)

	fmt.Fprintf(stdout, "tier %q (model %s): %s\n", setup.primary.Name, setup.primary.Model, describe(setup.primary))
	fmt.Fprintf(stdout, "tier %q (model %s): %s\n", setup.fallback.Name, setup.fallback.Model, describe(setup.fallback))
	fmt.Fprintln(stdout, "openai-go retries: off (option.WithMaxRetries(0)); sturdy retries on another endpoint instead")

	for i, step := range setup.steps {
		fmt.Fprintf(stdout, "\n%d. %s\n", i+1, step.title)
		if step.before != nil {
			step.before()
		}
		callCtx, cancel := context.WithTimeout(ctx, *timeout)
		if step.stream {
			err = streamCall(callCtx, client, setup.primary.Model, *prompt, stdout)
		} else {
			err = call(callCtx, client, setup.primary.Model, *prompt, stdout)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
	}
	if setup.report != nil {
		fmt.Fprintln(stdout, "\nthe keys each server saw (each endpoint gets only its own):")
		for _, line := range setup.report() {
			fmt.Fprintln(stdout, "   "+line)
		}
	}
	return nil
}

// call sends one chat completion and prints the answer and who served it.
func call(ctx context.Context, client openai.Client, model, prompt string, out io.Writer) error {
	var resp *http.Response
	start := time.Now()
	c, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	}, option.WithResponseInto(&resp))
	if err != nil {
		return err
	}
	if len(c.Choices) == 0 {
		return errors.New("the answer has no choices")
	}
	fmt.Fprintf(out, "   answer: %s\n", c.Choices[0].Message.Content)
	fmt.Fprintf(out, "   %s, in %v\n", servedBy(resp, c.Model), time.Since(start).Round(time.Millisecond))
	return nil
}

// streamCall sends one streaming chat completion and prints the tokens as
// they arrive. Failover and hedging happen before the first byte; after
// it, the stream is the caller's.
func streamCall(ctx context.Context, client openai.Client, model, prompt string, out io.Writer) error {
	var resp *http.Response
	start := time.Now()
	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	}, option.WithResponseInto(&resp))
	defer stream.Close()
	fmt.Fprint(out, "   stream: ")
	var first time.Duration
	var served string
	for stream.Next() {
		chunk := stream.Current()
		if first == 0 {
			first = time.Since(start)
		}
		if chunk.Model != "" {
			served = chunk.Model
		}
		if len(chunk.Choices) > 0 {
			fmt.Fprint(out, chunk.Choices[0].Delta.Content)
		}
	}
	fmt.Fprintln(out)
	if err := stream.Err(); err != nil {
		return err
	}
	fmt.Fprintf(out, "   %s, first token after %v, done in %v\n", servedBy(resp, served),
		first.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return nil
}

// servedBy reads the headers the Transport sets on the response.
func servedBy(resp *http.Response, model string) string {
	if resp == nil {
		return "served by ?"
	}
	return fmt.Sprintf("served by endpoint %s of tier %s (model %s)",
		resp.Header.Get(httpmw.HeaderEndpoint), resp.Header.Get(httpmw.HeaderTier), model)
}
