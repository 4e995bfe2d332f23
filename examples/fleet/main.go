// Command fleet loads a declarative fleet description (sturdy.yaml: model
// groups, tiers, endpoints, limits, policies and probes), builds one
// httpmw.Router from it, and sends chat completions (by name and by
// alias, streaming and not) and embeddings through it with openai-go.
//
//	go run ./examples/fleet                    # local fakes on 127.0.0.1
//	go run ./examples/fleet -config my.yaml    # your own file
//
// The hosts and keys come from the environment (OPENAI_URL,
// OPENAI_API_KEY, AZURE_OPENAI_URL, AZURE_OPENAI_KEY, VLLM_URL); any that
// is not set is served by a local fake, so the program needs no network.
package main

import "github.com/sturdyai/sturdy/examples/internal/cli"

func main() { cli.Main("fleet", run) }
