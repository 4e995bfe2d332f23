package httpmw

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/chain"
)

// providerCase is one answer as a provider words it, with where the
// sample comes from.
type providerCase struct {
	name   string
	status int
	header http.Header
	body   string
	class  sturdy.Class
	ra     time.Duration
	window int // the context window the answer names; 0: none
}

// Each body below is a provider's real wording; the comment beside it
// says where it was found (issue threads quote them as the servers sent
// them; the SDK tests and server sources were read in the repositories
// named).
var providerCases = []providerCase{
	// OpenAI.
	{
		// OpenAI's context_length_exceeded, as quoted in
		// mckaywrigley/repo-chat#7 (message) with the error object's
		// type/param/code of OpenAI's API reference.
		name: "openai context length", status: 400,
		body:  `{"error":{"message":"This model's maximum context length is 4097 tokens. However, your messages resulted in 26602 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
		class: sturdy.TooLarge, window: 4097,
	},
	{
		// OpenAI's newer wording (Responses API, GPT-4.1 family): the code
		// alone says it, the message names no window.
		name: "openai context window, no number", status: 400,
		body:  `{"error":{"message":"Your input exceeds the context window of this model. Please adjust your input and try again.","type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}`,
		class: sturdy.TooLarge,
	},
	{
		// A tokens-per-minute 429, quoted in vanderschaarlab/climb#1, with
		// the x-ratelimit-* headers of OpenAI's rate-limit guide.
		name: "openai 429 tpm", status: 429,
		header: http.Header{"X-Ratelimit-Limit-Tokens": {"30000"}, "X-Ratelimit-Remaining-Tokens": {"0"}, "X-Ratelimit-Reset-Tokens": {"6m0s"},
			"X-Ratelimit-Remaining-Requests": {"499"}, "X-Ratelimit-Reset-Requests": {"120ms"}},
		body:  `{"error":{"message":"Request too large for gpt-4o in organization org-VDAWofJASuLH0vVz8o9tiQZr on tokens per min (TPM): Limit 30000, Requested 30601. The input or output tokens must be reduced in order to run successfully. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`,
		class: sturdy.Overloaded, ra: 6 * time.Minute,
	},
	{
		// OpenAI's error-codes guide: "429 - You exceeded your current
		// quota, please check your plan and billing details": no wait
		// makes it pass; the key is unusable.
		name: "openai 429 insufficient quota", status: 429,
		body:  `{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
		class: sturdy.Auth,
	},
	{
		// OpenAI's error-codes guide: "503 - The engine is currently
		// overloaded, please try again later". Without a wait hint a 503
		// is Unavailable (sturdytest's Down503 answers OpenAI's "The server
		// is overloaded or not ready yet." for a server that is down), so
		// that a server that keeps answering it is ejected.
		name: "openai 503 overloaded", status: 503,
		body:  `{"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}}`,
		class: sturdy.Unavailable,
	},
	{
		name: "openai 401", status: 401,
		body:  `{"error":{"message":"Incorrect API key provided: sk-abc. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
		class: sturdy.Auth,
	},
	// Azure OpenAI.
	{
		// Quoted in microsoft/sample-app-aoai-chatGPT#406, with the
		// retry-after header the message announces.
		name: "azure 429", status: 429, header: http.Header{"Retry-After": {"9"}},
		body:  `{"error":{"code":"429","message":"Requests to the Creates a completion for the chat message Operation under Azure OpenAI API version 2023-03-15-preview have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 9 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."}}`,
		class: sturdy.Overloaded, ra: 9 * time.Second,
	},
	{
		// Azure answers a context overflow with OpenAI's error object.
		name: "azure context length", status: 400,
		body:  `{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 135201 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
		class: sturdy.TooLarge, window: 128000,
	},
	{
		// Azure's content filter is the request's fault: Fatal, never a
		// fallback.
		name: "azure content filter", status: 400,
		body:  `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.","type":null,"param":"prompt","code":"content_filter","status":400}}`,
		class: sturdy.Fatal,
	},
	// vLLM: ErrorResponse(error=ErrorInfo(message, type, param, code)),
	// vllm/entrypoints/openai serving code.
	{
		// Quoted in andrewcho-dev/opsconductor-ng
		// (vLLM_transition/TOKEN_LIMIT_FIX.md).
		name: "vllm max_tokens too large", status: 400,
		body:  `{"error":{"message":"'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is 4096 tokens and your request has 2778 input tokens (8000 > 4096 - 2778). None","type":"BadRequestError","param":null,"code":400}}`,
		class: sturdy.TooLarge, window: 4096,
	},
	{
		// vLLM's input processor: raise ValueError(f"The {prompt_type}
		// prompt (length {prompt_len}) is longer than the maximum model
		// length of {max_prompt_len}. {suggestion}").
		name: "vllm decoder prompt", status: 400,
		body:  "{\"error\":{\"message\":\"The decoder prompt (length 5951) is longer than the maximum model length of 4096. Make sure that `max_model_len` is no smaller than the number of text tokens.\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}}",
		class: sturdy.TooLarge, window: 4096,
	},
	// SGLang: ErrorResponse(object="error", message, type, param, code).
	{
		// SGLang's tokenizer manager, as quoted verbatim from a server in
		// public tests ("captured verbatim from a real sglang server").
		name: "sglang input longer than context", status: 400,
		body:  `{"object":"error","message":"The input (400013 tokens) is longer than the model's context length (262144 tokens).","type":"BadRequestError","param":null,"code":400}`,
		class: sturdy.TooLarge, window: 262144,
	},
	{
		name: "sglang requested token count", status: 400,
		body:  `{"object":"error","message":"Requested token count exceeds the model's maximum context length of 131072 tokens. You requested a total of 140000 tokens: 130000 tokens from the input messages and 10000 tokens for the completion. Please reduce the number of tokens in the input messages or the completion to fit within the limit.","type":"BadRequestError","param":null,"code":400}`,
		class: sturdy.TooLarge, window: 131072,
	},
	// Anthropic, in its API's error shape ({"type":"error","error":{...}});
	// the status and the wording classify it, whatever envelope its
	// OpenAI-compatible endpoint wraps them in.
	{
		// anthropic-sdk-go lib/betafallback/betafallback_test.go.
		name: "anthropic 529 overloaded", status: 529,
		body:  `{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}`,
		class: sturdy.Overloaded,
	},
	{
		// Quoted in sojohnnysaid/project-guide#2.
		name: "anthropic prompt too long", status: 400,
		body:  `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208656 tokens > 200000 maximum"}}`,
		class: sturdy.TooLarge, window: 200000,
	},
	{
		name: "anthropic 429", status: 429, header: http.Header{"Retry-After": {"15"}},
		body:  `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`,
		class: sturdy.Overloaded, ra: 15 * time.Second,
	},
	// Gemini's OpenAI-compatible endpoint (errors as a one-element list).
	{
		// Quoted in n4ze3m/page-assist#406 (v1beta/openai/chat/completions).
		name: "gemini 429 resource exhausted", status: 429,
		body:  `[{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}]`,
		class: sturdy.Overloaded,
	},
	{
		// Quoted in google-gemini/gemini-cli#6678.
		name: "gemini input token count", status: 400,
		body:  `[{"error":{"code":400,"message":"The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).","errors":[{"message":"The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).","domain":"global","reason":"badRequest"}],"status":"INVALID_ARGUMENT"}}]`,
		class: sturdy.TooLarge, window: 1048576,
	},
	{
		// Gemini's 503 UNAVAILABLE, as public tests of Gemini clients
		// quote it; with a Retry-After it would be Overloaded.
		name: "gemini 503 overloaded", status: 503,
		body:  `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`,
		class: sturdy.Unavailable,
	},
	// TGI and llama.cpp.
	{
		name: "llama.cpp context size", status: 400,
		body:  `{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}}`,
		class: sturdy.TooLarge, window: 4096,
	},
	{
		name: "408 is a timeout", status: 408, body: `{"error":{"message":"Request timed out."}}`,
		class: sturdy.Timeout,
	},
}

func TestClassifyProviderShapes(t *testing.T) {
	for _, tc := range providerCases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			h.Set("Content-Type", "application/json")
			resp := response(tc.status, h, tc.body)
			o := Classify(resp, nil)
			assert.Equal(t, tc.class, o.Class)
			assert.Equal(t, tc.ra, o.RetryAfter)
			var se *StatusError
			require.ErrorAs(t, o.Err, &se)
			assert.Equal(t, tc.status, se.StatusCode)
			var we *chain.WindowError
			if tc.window > 0 {
				require.ErrorAs(t, o.Err, &we)
				assert.Equal(t, tc.window, we.Limit)
			} else {
				assert.False(t, errors.As(o.Err, &we), "no window named")
			}
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tc.body, string(b), "the body is given back whole")
		})
	}
}

// Errors that arrive inside a stream: the server sent 200 and its
// headers, then an error event instead of the answer.
var streamErrorCases = []struct {
	name   string
	stream string
	class  sturdy.Class
	window int
}{
	{
		// vLLM's create_streaming_error_response: json.dumps of its
		// ErrorResponse(error=ErrorInfo(...)), sent as a data line.
		name:   "vllm context length in a stream",
		stream: "data: {\"error\": {\"message\": \"This model's maximum context length is 4096 tokens. However, you requested 4297 tokens (4097 in the messages, 200 in the completion). Please reduce the length of the messages or completion.\", \"type\": \"BadRequestError\", \"param\": null, \"code\": 400}}\n\ndata: [DONE]\n\n",
		class:  sturdy.TooLarge, window: 4096,
	},
	{
		// SGLang's create_streaming_error_response:
		// json.dumps({"error": error.model_dump()}).
		name:   "sglang context length in a stream",
		stream: "data: {\"error\": {\"object\": \"error\", \"message\": \"The input (5000 tokens) is longer than the model's context length (4096 tokens).\", \"type\": \"BadRequestError\", \"param\": null, \"code\": 400}}\n\ndata: [DONE]\n\n",
		class:  sturdy.TooLarge, window: 4096,
	},
	{
		// anthropic-sdk-go error_type_test.go: an overloaded_error event
		// in a 200 stream.
		name:   "anthropic overloaded in a stream",
		stream: "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
		class:  sturdy.Overloaded,
	},
	{
		name:   "a server error in a stream",
		stream: "data: {\"error\": {\"message\": \"CUDA out of memory\", \"type\": \"InternalServerError\", \"param\": null, \"code\": 500}}\n\n",
		class:  sturdy.Unavailable,
	},
	{
		name:   "a bad request in a stream",
		stream: "data: {\"error\": {\"message\": \"invalid tool schema\", \"type\": \"BadRequestError\", \"param\": null, \"code\": 400}}\n\n",
		class:  sturdy.Fatal,
	},
}

func TestClassifyErrorEvents(t *testing.T) {
	for _, tc := range streamErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			head := []byte(tc.stream[:min(64, len(tc.stream))])
			require.True(t, startsWithErrorEvent(head))
			ev, err := readFirstEvent(strings.NewReader(tc.stream[len(head):]), head)
			require.NoError(t, err)
			o := classifyErrorEvent([]byte(strings.ToLower(string(ev))))
			assert.Equal(t, tc.class, o.Class)
			assert.ErrorIs(t, o.Err, ErrStreamError)
			var we *chain.WindowError
			if tc.window > 0 {
				require.ErrorAs(t, o.Err, &we)
				assert.Equal(t, tc.window, we.Limit)
			}
		})
	}
	for _, ok := range []string{"data: {\"id\":\"chatcmpl-1\",\"choices\":[]}\n\n", ": keep-alive\n\n", "data: [DONE]\n\n"} {
		assert.False(t, startsWithErrorEvent([]byte(ok)), ok)
	}
}
