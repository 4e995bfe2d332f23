package balancer

import (
	"context"

	"github.com/sturdyai/sturdy/internal/prefix"
)

// Key is what a request would find cached on a replica: the chained
// hashes of its prompt's leading blocks, or a session. PrefixAffinity
// routes on the Key that WithKey puts in the context given to Pick; the
// other policies ignore it. The zero Key is no key.
type Key struct {
	blocks  []uint64
	session uint64
	kind    keyKind
}

type keyKind uint8

const (
	noKey keyKind = iota
	prefixKey
	sessionKey
)

// maxKeyBlocks is how many leading blocks of a prefix Key PrefixAffinity
// reads, which bounds the lookups of a pick.
const maxKeyBlocks = prefix.MaxBlocks

// PrefixKey returns the Key of a prompt whose leading blocks hash to
// blocks: blocks[i] must stand for the whole of the prompt's first i+1
// blocks (a chain, h_i = H(h_{i-1}, block_i), as vLLM names its cached
// blocks), so that two prompts share blocks[i] exactly when they share
// that much prefix. Any such chain will do, as long as every client of the
// pool computes the same one. Only the first 64 are read.
//
// The Key keeps blocks, not a copy: leave them unchanged while the Key is
// in use. An empty blocks gives the zero Key.
func PrefixKey(blocks []uint64) Key {
	if len(blocks) == 0 {
		return Key{}
	}
	return Key{blocks: blocks[:min(len(blocks), maxKeyBlocks)], kind: prefixKey}
}

// PromptKey returns the prefix Key of prompt, a request's prompt text in
// whatever form every client of the pool writes it, for a request to
// model (and salt, a tenant's cache namespace; "" for none): the chained
// hashes of its leading blocks of blockSize bytes (0 means
// DefaultAffinityBlockSize), as httpmw hashes an OpenAI-style body's
// prompt. It is for hooks (httpmw's and grpcmw's WithAffinityKey) that
// read prompts httpmw cannot, such as a gRPC message's field. Its hashes
// are not httpmw's for the same words (httpmw hashes roles and JSON
// escapes too), so a pool's clients must all use one or the other. It
// allocates the Key's blocks; a prompt shorter than one block gives the
// zero Key.
func PromptKey(model, salt, prompt string, blockSize int) Key {
	if blockSize <= 0 {
		blockSize = DefaultAffinityBlockSize
	}
	var out [maxKeyBlocks]uint64
	text := []byte(prompt[:min(len(prompt), maxKeyBlocks*blockSize)]) // no more than is hashed
	n := prefix.Text(model, salt, text, blockSize, out[:])
	return PrefixKey(append([]uint64(nil), out[:n]...))
}

// SessionKey returns the Key of a conversation, user or tenant named s (a
// header value, or the body's prompt_cache_key or user): requests with the
// same s go to the same replica while its load allows, whatever their
// prompts. An empty s gives the zero Key.
func SessionKey(s string) Key {
	if s == "" {
		return Key{}
	}
	return Key{session: prefix.Sum64(sessionSeed, s), kind: sessionKey}
}

// sessionSeed keeps a session named like a prompt's block apart from it.
const sessionSeed = 0x5e55_1011_5e55_1011

type keyContext struct{}

// keyCtx carries a Key. It is one allocation, where context.WithValue
// would take two (the context and the Key boxed in an interface): Value
// hands out a pointer to the Key it holds.
type keyCtx struct {
	context.Context
	k Key
}

func (c *keyCtx) Value(key any) any {
	if key == (keyContext{}) {
		return &c.k
	}
	return c.Context.Value(key)
}

// WithKey returns a copy of ctx that carries k to Pick. Pick reads it
// without allocating; WithKey itself allocates, once per call.
func WithKey(ctx context.Context, k Key) context.Context {
	return &keyCtx{Context: ctx, k: k}
}

// keyOf returns the Key in ctx, or the zero Key.
func keyOf(ctx context.Context) Key {
	if k, ok := ctx.Value(keyContext{}).(*Key); ok {
		return *k
	}
	return Key{}
}
