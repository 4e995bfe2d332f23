package chain

import "sync/atomic"

// ListenSample is how often an adapter reads the rate-limit fields of an
// endpoint whose last answers carried none: one answer in ListenSample.
// Providers send them on every response, so an endpoint that speaks is
// read on every answer, and one that never does costs a read every
// ListenSample answers (and a server that starts sending them is heard
// within that many).
const ListenSample = 64

// Sampled decides which of an endpoint's answers an adapter reads for
// rate-limit fields; its zero value reads the next one. It is safe for
// concurrent use.
type Sampled struct {
	quiet atomic.Bool   // the last read carried no rate-limit field
	calls atomic.Uint32 // answers while quiet, for sampling
}

// Want reports whether this answer should be read.
func (s *Sampled) Want() bool {
	return !s.quiet.Load() || s.calls.Add(1)%ListenSample == 0
}

// Heard records what a read found: said is whether it carried rate-limit
// fields.
func (s *Sampled) Heard(said bool) {
	if s.quiet.Load() == said {
		s.quiet.Store(!said)
	}
}

// ListenMetadata is Listen for gRPC metadata, response headers or
// trailers, whose keys are lower case: the same fields, the same parser
// (ratelimit.Limiter.ListenMetadata). It reports whether md carried any
// rate-limit field. Metadata without one costs a pass over its keys and
// no allocation.
func (c *Chain) ListenMetadata(endpoint string, md map[string][]string) bool {
	if !c.listens {
		return false
	}
	k := c.pacing.key(endpoint)
	said := c.pacing.l.ListenMetadata(k, md)
	if said {
		c.pacing.heard(k)
	}
	return said
}

// heard turns pacing on once a response's rate-limit fields gave the
// limiter key a rate: a request rate makes picks consult the limiter, a token rate
// also makes calls keep a ledger, so that each pick charges the call's
// estimate. Until then a pick costs an atomic load, and a call no ledger.
func (p *pacing) heard(key string) {
	if !p.active.Load() && p.l.LearnedRate(key) > 0 {
		p.active.Store(true)
	}
	if !p.tokens.Load() && p.l.ToldTokensPerMinute(key) > 0 {
		p.tokens.Store(true)
		p.active.Store(true)
	}
}

// PacesTokens reports whether some endpoint has a token rate, configured
// or told by its server's rate-limit fields: calls' token estimates are
// then charged to endpoints, and an adapter should report their usage.
func (c *Chain) PacesTokens() bool { return c.pacing != nil && c.pacing.tokens.Load() }

// Listens reports whether Listen and ListenMetadata learn anything: false
// when learning is off (ratelimit.LearnConfig.Off), so that an adapter
// can skip reading what only they would use.
func (c *Chain) Listens() bool { return c.listens }
