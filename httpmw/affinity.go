package httpmw

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/textproto"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/internal/prefix"
)

// KeyFunc returns the affinity key of a request, for the PrefixAffinity
// balancer (see WithAffinityKey): balancer.SessionKey of a conversation or
// tenant, balancer.PromptKey of a prompt in a format httpmw does not read,
// or any balancer.PrefixKey. r is the caller's request (read it, never
// change it); body is its body when the Transport holds it in memory (a
// body with GetBody is read once for it, up to WithMaxBodyBuffer), nil
// otherwise; neither may be kept after the call. ok false leaves the key
// to the Transport's own reading (WithAffinity). It is called once per
// call, before the first attempt, on the caller's goroutine.
type KeyFunc func(r *http.Request, body []byte) (k balancer.Key, ok bool)

// keyer finds the affinity key of each call. It is nil when no tier uses
// PrefixAffinity, so that a Transport without affinity pays one nil check.
type keyer struct {
	blockSize int
	header    string // canonical; "" for none
	fromUser  bool
	hook      KeyFunc
}

// checkAffinity reports what is wrong with the affinity options of cfg,
// before the pipeline is built.
func checkAffinity(cfg *config) []error {
	var errs []error
	a := cfg.Affinity
	if a == nil && cfg.Balancer.Policy == balancer.PrefixAffinity {
		a = &cfg.Balancer.Affinity
	}
	if a != nil && a.SessionHeader != "" && !validHeaderName(a.SessionHeader) {
		errs = append(errs, fmt.Errorf("httpmw: WithAffinity: SessionHeader %q is not a valid header name", a.SessionHeader))
	}
	if cfg.keyHook != nil && a == nil {
		errs = append(errs, fmt.Errorf("httpmw: WithAffinityKey is set but no tier balances by affinity; add WithAffinity"))
	}
	return errs
}

// newKeyer returns the keyer of a Transport whose balancers' affinity
// settings are a (nil: not PrefixAffinity), or nil.
func newKeyer(a *balancer.Affinity, hook KeyFunc) *keyer {
	if a == nil {
		return nil
	}
	k := &keyer{blockSize: a.BlockSize, fromUser: a.SessionFromUser, hook: hook}
	if a.SessionHeader != "" {
		k.header = textproto.CanonicalMIMEHeaderKey(a.SessionHeader)
	}
	return k
}

// withKey returns ctx carrying the call's key, found once for all its
// attempts and tiers, in order: the hook's, the session header's, the
// body's prompt_cache_key (or user, with SessionFromUser), the body's
// prompt. A call with none returns ctx, and goes by P2C Peak-EWMA.
func (k *keyer) withKey(ctx context.Context, c *call) context.Context {
	if key, ok := k.key(c); ok {
		return balancer.WithKey(ctx, key)
	}
	return ctx
}

func (k *keyer) key(c *call) (balancer.Key, bool) {
	if k.hook != nil {
		if key, ok := k.hook(c.req, c.body.held(c.t)); ok {
			return key, true
		}
	}
	if k.header != "" {
		if v := c.req.Header[k.header]; len(v) > 0 && v[0] != "" {
			return balancer.SessionKey(v[0]), true
		}
	}
	body := c.body.held(c.t)
	if body == nil {
		return balancer.Key{}, false
	}
	// The Key keeps its blocks for the call. (prefix.Read leaks out, so an
	// array on the stack would move to the heap and then be copied.)
	out := new([prefix.MaxBlocks]uint64)
	n, s, ok := prefix.Read(body, k.blockSize, out[:])
	switch {
	case !ok:
		return balancer.Key{}, false
	case s.CacheKey != nil:
		return balancer.SessionKey(string(s.CacheKey)), true
	case k.fromUser && s.User != nil:
		return balancer.SessionKey(string(s.User)), true
	case n == 0:
		return balancer.Key{}, false
	}
	return balancer.PrefixKey(out[:n]), true
}

// held returns the whole request body if the Transport holds it or can
// (a body with GetBody, read once up to WithMaxBodyBuffer and kept for
// the rewrites and the telemetry that read it too), nil otherwise: no
// body, or one too long to buffer.
func (b *reqBody) held(t *Transport) []byte {
	switch b.mode {
	case bodyBuffered:
		if b.chunks == nil {
			return b.buf
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.flat()
	case bodyGetBody:
		b.mu.Lock()
		defer b.mu.Unlock()
		raw, _ := b.getBodyRaw(t) // nil when it cannot be read: no key
		return raw
	}
	return nil
}

// readSized is io.ReadAll of at most limit bytes into one buffer of the
// size hint (a request's ContentLength) when it is known.
func readSized(r io.Reader, limit, hint int64) ([]byte, error) {
	if hint <= 0 || hint >= limit {
		return io.ReadAll(io.LimitReader(r, limit))
	}
	buf := make([]byte, 0, hint+1) // +1: EOF is seen without growing
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			rest, err := io.ReadAll(io.LimitReader(r, limit-int64(len(buf))))
			return append(buf, rest...), err
		}
	}
}
