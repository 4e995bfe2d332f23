package chain

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
