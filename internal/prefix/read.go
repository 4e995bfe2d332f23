package prefix

// DefaultBlockSize is the block size Read uses when given none: 256 bytes,
// about 64 tokens of English text, four of vLLM's default 16-token blocks.
// Smaller blocks match prefixes more finely and cost more hashes per
// prompt; the hashing itself costs the same per byte.
const DefaultBlockSize = 256

// MaxBlocks is the length of the array callers are expected to pass to
// Read: 64 blocks of DefaultBlockSize cover the first 16 KiB of a prompt.
// Prompts that agree on all of those are one key.
const MaxBlocks = 64

// Separators between the parts of a chat prompt, so that moving text
// between a role, a message and a content part changes the hash. Control
// characters, rare in prompts; a collision only shares a replica.
const (
	endRole      = 0x1f // after a message's role
	endMessage   = 0x1e // after a message's content
	betweenParts = 0x1d // between the parts of an array content
)

// Read hashes the prompt of an OpenAI-style request body into out, one
// chained hash per whole block of blockSize bytes (DefaultBlockSize if
// blockSize < 1), at most len(out) blocks, and returns how many it wrote:
// out[i] stands for the prompt's first i+1 blocks under the body's "model"
// and "cache_salt". A prompt shorter than one block gives n == 0.
//
// s holds the raw contents of the body's "prompt_cache_key" and "user"
// strings (escapes left as sent), nil where absent or empty; they point
// into body.
//
// The body must be a JSON object with either "messages" (chat completions:
// an array of objects with a string "role" and a "content" that is a
// string, an array of parts or null) or a string "prompt" (completions).
// Anything else, including malformed JSON and a body with both, gives
// ok == false and no key.
func Read(body []byte, blockSize int, out []uint64) (n int, s Session, ok bool) {
	if blockSize < 1 {
		blockSize = DefaultBlockSize
	}
	r := reader{b: body, c: newChain(0, blockSize, out)}
	if !r.read() {
		return 0, Session{}, false
	}
	// The seed may follow the prompt in the body, so the chain starts from
	// zero and each hash is keyed with the seed once the body is read:
	// out[i] = Mix(seed, h_i) identifies the seed and the prefix as a
	// chain started from the seed would.
	seed := Mix(Sum64(k2, r.model), Sum64(k3, r.salt))
	for i := range r.c.n {
		out[i] = Mix(seed, out[i])
	}
	return r.c.n, Session{CacheKey: nonEmpty(r.cacheKey), User: nonEmpty(r.user)}, true
}

// Session is what a body says of its session, as Read found it.
type Session struct {
	CacheKey []byte // "prompt_cache_key": OpenAI routes on it
	User     []byte // "user": the end user
}

// Get returns the cache key, or else the user; nil if neither is set.
func (s Session) Get() []byte {
	if s.CacheKey != nil {
		return s.CacheKey
	}
	return s.User
}

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// reader reads a body once, hashing the prompt as it goes.
type reader struct {
	b []byte
	c chain
	// raw string contents of these members, nil if absent or not strings
	model, salt, cacheKey, user []byte
}

// read checks that the body is one well-formed JSON object with exactly
// one of "messages" and "prompt", hashing it, and notes the other members
// Read needs. A repeated member counts as its last occurrence, as
// encoding/json and Python's json module read it.
func (r *reader) read() bool {
	b := r.b
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	var messages, prompt bool
	o := openObject(b, i)
	for {
		key, ok := o.next()
		if !ok {
			break
		}
		v := o.value()
		switch {
		case keyIs(key, "messages"):
			if b[v] != '[' {
				return false
			}
			r.c.reset()
			o.at(readMessages(&r.c, b, v))
			messages = true
			continue
		case keyIs(key, "prompt"):
			if b[v] != '"' {
				return false
			}
			r.c.reset()
			o.at(feedString(&r.c, b, v))
			prompt = true
			continue
		}
		o.skip(1)
		end := o.end()
		if end < 0 {
			return false
		}
		switch {
		case keyIs(key, "model"):
			r.model = stringAt(b, v, end)
		case keyIs(key, "cache_salt"):
			r.salt = stringAt(b, v, end)
		case keyIs(key, "prompt_cache_key"):
			r.cacheKey = stringAt(b, v, end)
		case keyIs(key, "user"):
			r.user = stringAt(b, v, end)
		}
	}
	end := o.end()
	return end >= 0 && skipWS(b, end) == len(b) && messages != prompt
}

// stringAt returns the raw content of the value b[v:end] if it is a string.
func stringAt(b []byte, v, end int) []byte {
	if b[v] != '"' {
		return nil
	}
	return b[v+1 : end-1]
}

// readMessages hashes the messages of the array at b[i] until c is full
// and returns the position after the array. Messages after that are only
// skipped: their syntax is checked, not their shape.
func readMessages(c *chain, b []byte, i int) int {
	a := openArray(b, i)
	for a.next() {
		if c.full() {
			a.skip(2)
			continue
		}
		a.at(readMessage(c, b, a.value()))
	}
	return a.end()
}

// readMessage hashes one message, role first whatever the order of its
// members, and returns the position after it. In the usual order, role
// then content, the content is hashed as it is read; otherwise it is
// found first and read again.
func readMessage(c *chain, b []byte, i int) int {
	if b[i] != '{' {
		return -1
	}
	role, content := -1, -1
	saved := *c
	fed, undone := false, false
	o := openObject(b, i)
	for {
		key, ok := o.next()
		if !ok {
			break
		}
		v := o.value()
		switch {
		case keyIs(key, "role"):
			role = v
		case keyIs(key, "content"):
			content = v
		default:
			o.skip(2)
			continue
		}
		if fed {
			// A repeated role or content: the last one counts, so undo
			// the early hashing and read both at the end.
			*c = saved
			fed, undone = false, true
		}
		if content == v && role >= 0 && b[role] == '"' && !undone {
			feedString(c, b, role)
			c.writeByte(endRole)
			o.at(readContent(c, b, v))
			fed = true
			continue
		}
		o.skip(2)
	}
	end := o.end()
	if end < 0 || role < 0 || b[role] != '"' {
		return -1
	}
	if !fed {
		feedString(c, b, role)
		c.writeByte(endRole)
		if content >= 0 && readContent(c, b, content) < 0 {
			return -1
		}
	}
	c.writeByte(endMessage)
	return end
}

// readContent hashes a message's content: a string, an array of parts, or
// null (an assistant message that only calls tools).
func readContent(c *chain, b []byte, i int) int {
	switch b[i] {
	case '"':
		return feedString(c, b, i)
	case '[':
		return readParts(c, b, i)
	case 'n':
		return literal(b, i, "null")
	}
	return -1
}

// readParts hashes an array of content parts. A single text part hashes
// as the same text given as a string.
func readParts(c *chain, b []byte, i int) int {
	a := openArray(b, i)
	for first := true; a.next(); first = false {
		if !first {
			c.writeByte(betweenParts)
		}
		end := readPart(c, b, a.value())
		if end < 0 {
			return -1
		}
		a.at(end)
	}
	return a.end()
}

// readPart hashes one content part: a text part by its text, any other
// (an image, audio, a file) by its raw JSON, so that two prompts with
// different images differ.
func readPart(c *chain, b []byte, i int) int {
	if b[i] != '{' {
		return -1
	}
	typ, text := -1, -1
	o := openObject(b, i)
	for {
		key, ok := o.next()
		if !ok {
			break
		}
		switch {
		case keyIs(key, "type"):
			typ = o.value()
		case keyIs(key, "text"):
			text = o.value()
		}
		o.skip(1)
	}
	end := o.end()
	if end < 0 || typ < 0 || b[typ] != '"' {
		return -1
	}
	if keyIs(b[typ+1:skipString(b, typ)-1], "text") {
		if text < 0 || b[text] != '"' {
			return -1
		}
		feedString(c, b, text)
	} else {
		c.write(b[i:end])
	}
	return end
}

// Text hashes text, a prompt in whatever form its clients agree on, into
// out as Read hashes a body's prompt: one chained hash per whole block of
// blockSize bytes (DefaultBlockSize if blockSize < 1), keyed with model
// and salt. It is for prompts that are not OpenAI-style JSON (a gRPC
// message's field): its hashes are not Read's for the same words, so a
// pool's clients must all use one or the other.
func Text(model, salt string, text []byte, blockSize int, out []uint64) int {
	if blockSize < 1 {
		blockSize = DefaultBlockSize
	}
	c := newChain(0, blockSize, out)
	c.write(text[:min(len(text), c.room())])
	seed := Mix(Sum64(k2, model), Sum64(k3, salt))
	for i := range c.n {
		out[i] = Mix(seed, out[i])
	}
	return c.n
}
