package grpcmw

import (
	"google.golang.org/grpc/metadata"

	"github.com/sturdyai/sturdy/internal/chain"
)

// Rate-limit metadata. A server's rate-limit fields (OpenAI/Azure
// x-ratelimit-*, Anthropic anthropic-ratelimit-*, the IETF RateLimit
// fields) reach the chain's learned rates as httpmw's response headers
// do, through one parser (chain.ListenMetadata).
//
// A unary call's trailer costs nothing more to read: it is read anyway
// (pushback, load reports). Response headers, and a stream's trailer at
// its end, do: grpc-go copies the metadata for every call that asks
// (grpc.Header: four allocations and ~460 B a call against a server that
// sends one header, BenchmarkUnary/client). So a call asks for them only
// when its endpoint's last ones carried rate-limit fields, or none has
// been read yet, and otherwise one call in chain.ListenSample, to notice a
// server that starts sending them (chain.Sampled, which httpmw uses for
// its response headers too).

// listenGate is an endpoint's state for reading its response headers and
// its streams' trailers.
type listenGate struct {
	header, trailer chain.Sampled
}

// Which metadata of an attempt was read, for Client.listen.
const (
	readHeader = 1 << iota
	readTrailer
)

// listen feeds an attempt's response metadata on endpoint name to the
// chain's learned rates. read says which of header and trailer were read
// (a nil one that was read had no metadata: a trailers-only answer has no
// headers, and that says nothing of what its headers carry).
func (c *Client) listen(name string, e *endpoint, header, trailer metadata.MD, read int) {
	if !c.chain.Listens() {
		return
	}
	if said := c.chain.ListenMetadata(name, header); read&readHeader != 0 && header != nil {
		e.gate.header.Heard(said)
	}
	if said := c.chain.ListenMetadata(name, trailer); read&readTrailer != 0 && trailer != nil {
		e.gate.trailer.Heard(said)
	}
}

// wantHeader reports whether an attempt on e should read its response
// headers for the chain's learned rates.
func (c *Client) wantHeader(e *endpoint) bool {
	return c.chain.Listens() && e.gate.header.Want()
}

// wantTrailer is wantHeader for a stream's trailer at its clean end.
func (c *Client) wantTrailer(e *endpoint) bool {
	return c.chain.Listens() && e.gate.trailer.Want()
}
