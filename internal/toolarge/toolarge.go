// Package toolarge recognises the answers in which model servers say
// that a request exceeds the model's context window, and reads the
// window's size when they name it. Both adapters use it: httpmw on error
// bodies and error events, grpcmw on INVALID_ARGUMENT messages.
package toolarge

import "bytes"

// phrases are the ways servers say the prompt exceeds the
// context window, lower-cased (httpmw's classify tests quote each server's
// wording and cite it): OpenAI's and Azure OpenAI's code and messages,
// vLLM's, SGLang's, TGI's, Anthropic's, Gemini's and llama.cpp's.
var phrases = [][]byte{
	[]byte("context_length_exceeded"),
	[]byte("maximum context length"),
	[]byte("exceeds the context window"),
	[]byte("longer than the maximum model length"),
	[]byte("longer than the model's context length"),
	[]byte("`inputs` tokens + `max_new_tokens` must be <="),
	[]byte("prompt is too long"),
	[]byte("input is too long"),
	[]byte("exceeds the maximum number of tokens"),
	[]byte("exceeds the available context size"),
}

// markers precede the context window's size in the wordings of
// phrases that name it; the first number after a marker is the
// window. Anthropic's "prompt is too long: 210000 tokens > 200000
// maximum" names it after "tokens > ".
var markers = [][]byte{
	[]byte("maximum context length is "),         // OpenAI, Azure OpenAI, vLLM
	[]byte("maximum context length of "),         // SGLang
	[]byte("maximum model length of "),           // vLLM's input processor
	[]byte("model's context length ("),           // SGLang
	[]byte("maximum number of tokens allowed ("), // Gemini
	[]byte("`max_new_tokens` must be <= "),       // TGI
	[]byte("tokens > "),                          // Anthropic
	[]byte(`"n_ctx":`),                           // llama.cpp
}

// Says reports whether lower (an answer, lower-cased) says the request
// exceeds the context window.
func Says(lower []byte) bool {
	for _, p := range phrases {
		if bytes.Contains(lower, p) {
			return true
		}
	}
	return false
}

// Window returns the context window, in tokens, that lower (an answer,
// lower-cased) names after one of its markers, or 0.
func Window(lower []byte) int {
	for _, m := range markers {
		i := bytes.Index(lower, m)
		if i < 0 {
			continue
		}
		n, digits := 0, 0
	scan:
		for _, c := range lower[i+len(m):] {
			switch {
			case c >= '0' && c <= '9' && n < 1e9:
				n = n*10 + int(c-'0')
				digits++
			case c == ',' && digits > 0: // "1,048,576"
			case c == ' ' && digits == 0:
			default:
				break scan
			}
		}
		if n > 0 {
			return n
		}
	}
	return 0
}
