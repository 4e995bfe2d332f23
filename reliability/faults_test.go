package reliability

import (
	"github.com/sturdyai/sturdy/reliability/internal/rig"
)

// netFault is a real network fault that toxiproxy puts between sturdy and
// one server.
type netFault struct {
	name  string
	order int
	does  string // what sturdy does when one endpoint of three has it
	all   string // ... and when every endpoint has it
	// grpcDoes and grpcAll replace does and all for grpcmw when set.
	grpcDoes, grpcAll string
	apply             func(p *rig.Proxy) error
	// cuts: the fault can cut a response after its first byte reached the
	// caller, where failover is no longer possible (httpmw's package doc, Streams).
	cuts bool
}

// netFaults are the faults every adapter is tested against. Delays are
// small: tens to hundreds of milliseconds.
var netFaults = []netFault{
	{
		name: "connection refused", order: 10,
		does:  "fails the attempt at once (unavailable) and retries on another endpoint",
		all:   "returns one error listing every refused attempt",
		apply: func(p *rig.Proxy) error { return p.Disable() },
	},
	{
		name: "reset mid-request (reset_peer)", order: 20,
		does: "classifies the reset as unavailable and retries elsewhere",
		all:  "returns one error listing every reset attempt",
		apply: func(p *rig.Proxy) error {
			return p.Toxic("reset", "reset_peer", "upstream", map[string]any{"timeout": 0})
		},
	},
	{
		name: "black hole (timeout toxic)", order: 30,
		does: "gives up on the attempt at the time-to-first-byte (HTTP) or attempt (gRPC) timeout and retries elsewhere",
		all:  "returns one error listing every timed-out attempt, within the deadline",
		apply: func(p *rig.Proxy) error {
			return p.Toxic("hole", "timeout", "downstream", map[string]any{"timeout": 0})
		},
	},
	{
		name: "latency 150±50 ms (latency toxic)", order: 40,
		does: "hedges the slow attempt after 60 ms on another endpoint; the first answer wins",
		all:  "answers every call, slowly",
		apply: func(p *rig.Proxy) error {
			return p.Toxic("slow", "latency", "downstream", map[string]any{"latency": 150, "jitter": 50})
		},
	},
	{
		name: "cut before the headers end (limit_data 64 B)", order: 50,
		does: "classifies EOF-before-headers as unavailable and retries elsewhere",
		all:  "returns one error listing every cut attempt",
		apply: func(p *rig.Proxy) error {
			return p.Toxic("cut", "limit_data", "downstream", map[string]any{"bytes": 64})
		},
	},
	{
		name: "cut mid-stream (limit_data 300 B)", order: 60, cuts: true,
		does:     "past the first byte, gives the caller the read error (io.ErrUnexpectedEOF), never a clean end; health ejects the endpoint after 5 cuts",
		all:      "every call gets the read error; none ends cleanly truncated",
		grpcDoes: "a unary call (its HTTP/2 connection dies before the reply is whole) fails over as unavailable; a stream cut after its first message gives the caller the stream error, never a clean end",
		grpcAll:  "unary calls return one error listing their attempts; streams cut after their first message give the stream error",
		apply: func(p *rig.Proxy) error {
			return p.Toxic("cut", "limit_data", "downstream", map[string]any{"bytes": 300})
		},
	},
	{
		name: "slow bandwidth (bandwidth 1 KB/s)", order: 70,
		does: "hedges or times out the slow attempt and retries elsewhere",
		all:  "returns one error listing the timed-out attempts, within the deadline",
		apply: func(p *rig.Proxy) error {
			return p.Toxic("narrow", "bandwidth", "downstream", map[string]any{"rate": 1})
		},
	},
}
