// Package prefix turns an OpenAI-style request body into the key that
// cache-aware balancing routes on: chained hashes of the prompt's leading
// blocks, and a session key.
//
// Self-hosted model servers (vLLM, SGLang) keep the attention state of
// prompts they have seen and reuse it for any later prompt that starts the
// same way, in blocks: vLLM names a cached block by a hash of its tokens
// chained to the hash of the block before it, so a block's hash stands for
// the whole prefix up to its end. A client that sends prompts sharing a
// prefix to the same replica turns that replica's cache hits into a
// shorter prefill. Read mirrors the scheme without a tokenizer, as llm-d's
// approximate prefix-cache producer does: the prompt's text is cut into
// blocks of bytes (DefaultBlockSize), block i's hash is
// h_i = H(h_{i-1}, block_i), and Read returns each keyed with a hash of the
// request's model and cache_salt (a LoRA adapter or a salted tenant has a
// cache of its own), as if the chain had started from it.
// Two prompts share h_i exactly when they share their first i blocks (up
// to hash collisions, which only make two prompts share a replica).
//
// The prompt is what the server's chat template would see, in order: for
// chat completions each message's role and content (a string, or the
// parts of an array: text parts by their text, other parts by their raw
// JSON), for completions the prompt string. Text is hashed in one
// canonical JSON escaping, so that clients whose encoders escape
// differently (encoding/json writes < as \u003c, Python's json writes é as
// \u00e9) agree. Fields that do not change the prompt ("stream",
// "max_tokens", ...) are ignored.
//
// Read reads the body once and allocates nothing. It hashes at most
// len(out) whole blocks and looks into no more of the prompt than they
// need; the rest of the body is only skipped, string content found with
// bytes.IndexByte. It does skip to the end: "model", "cache_salt" and the
// session fields may follow "messages" (openai-go writes "model" after
// it), and a body that is not well-formed JSON gives no key. On
// BenchmarkKey32KiB's 32 KiB chat request it costs an eighth of what
// json.Marshal takes to encode the request when the prompt is prose (an
// escape every 75 bytes), two fifths when it is code-like (one every 22):
// each escape costs a bytes.IndexByte call.
//
// H is a multiply-mix hash in the style of wyhash (16 bytes per 64×64→128
// multiply), written here because the standard library's fast hash,
// hash/maphash, is seeded per process and clients must agree across
// processes; FNV-1a takes a multiply per byte. It is not a cryptographic
// hash: a crafted prompt can collide with another, which only routes both
// to one replica.
package prefix
