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
	p := c.pacing
	said := p.l.ListenMetadata(endpoint, md)
	if said && !p.active.Load() && p.l.LearnedRate(endpoint) > 0 {
		p.active.Store(true)
	}
	return said
}

// Listens reports whether Listen and ListenMetadata learn anything: false
// when learning is off (ratelimit.LearnConfig.Off), so that an adapter
// can skip reading what only they would use.
func (c *Chain) Listens() bool { return c.listens }
