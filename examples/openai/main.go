// Command openai sends chat completions with the official openai-go client
// through sturdy's httpmw.Transport: two providers of the primary model and a
// fallback model, one non-streaming call and one streaming call printed token
// by token.
//
//	go run ./examples/openai          # local fake servers on 127.0.0.1, with faults
//	go run ./examples/openai -h       # flags and environment variables
//
// With OPENAI_API_KEY and STURDY_PRIMARY_URLS set it talks to real
// OpenAI-compatible endpoints instead (see -h); -local forces the fakes.
package main

import "github.com/sturdyai/sturdy/examples/internal/cli"

func main() { cli.Main("openai", run) }
