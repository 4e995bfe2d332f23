package sturdytest

import (
	"maps"
	"slices"
	"sync"
)

// maxCredentials bounds how many distinct credentials a server remembers.
const maxCredentials = 1024

// Stats is a snapshot of a server's counters.
type Stats struct {
	// Requests counts every request received, rejected ones included.
	Requests int64
	// ByPath counts requests by URL path: "/v1/chat/completions",
	// "/v1/models", "/health", or "other".
	ByPath map[string]int64
	// ByStatus counts responses by the status code sent. Requests cut
	// without a response (Aborted) or given up by the client before the
	// headers (Canceled) have no entry.
	ByStatus map[int]int64
	// ByModel counts chat completions and embeddings by the "model" of
	// their body, whatever their outcome once the body was read
	// (accepted, 404, 400, 429, 500 alike).
	ByModel map[string]int64
	// InFlight is the number of requests being handled now; MaxInFlight
	// the most at once since creation or Reset.
	InFlight, MaxInFlight int64
	// Aborted counts connections the server cut on purpose (DownReset,
	// MidStreamCut).
	Aborted int64
	// Canceled counts requests the client (or Close) gave up before the
	// response was complete.
	Canceled int64
	// ForeignCredentials counts requests that carried a credential other
	// than Config.RequiredAPIKey (always 0 when no key is required).
	ForeignCredentials int64
}

type stats struct {
	mu    sync.Mutex
	s     Stats
	creds []string
	seen  map[string]struct{}
}

func newStats() *stats {
	st := &stats{}
	st.resetLocked()
	return st
}

func (st *stats) resetLocked() {
	inflight := st.s.InFlight
	st.s = Stats{
		ByPath:      map[string]int64{},
		ByStatus:    map[int]int64{},
		ByModel:     map[string]int64{},
		InFlight:    inflight,
		MaxInFlight: inflight,
	}
	st.creds = nil
	st.seen = map[string]struct{}{}
}

func (st *stats) reset() {
	st.mu.Lock()
	st.resetLocked()
	st.mu.Unlock()
}

func (st *stats) snapshot() Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.s
	s.ByPath = maps.Clone(st.s.ByPath)
	s.ByStatus = maps.Clone(st.s.ByStatus)
	s.ByModel = maps.Clone(st.s.ByModel)
	return s
}

func (st *stats) credentials() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.creds)
}

// begin counts a request arriving and the credentials it carries.
func (st *stats) begin(path string, creds []string, required string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Requests++
	st.s.ByPath[path]++
	st.s.InFlight++
	st.s.MaxInFlight = max(st.s.MaxInFlight, st.s.InFlight)
	foreign := false
	for _, c := range creds {
		if required != "" && c != required {
			foreign = true
		}
		if _, ok := st.seen[c]; !ok && len(st.creds) < maxCredentials {
			st.seen[c] = struct{}{}
			st.creds = append(st.creds, c)
		}
	}
	if foreign {
		st.s.ForeignCredentials++
	}
}

func (st *stats) end() {
	st.mu.Lock()
	st.s.InFlight--
	st.mu.Unlock()
}

func (st *stats) status(code int) {
	st.mu.Lock()
	st.s.ByStatus[code]++
	st.mu.Unlock()
}

func (st *stats) model(m string) {
	st.mu.Lock()
	if _, ok := st.s.ByModel[m]; ok || len(st.s.ByModel) < maxCredentials {
		st.s.ByModel[m]++
	}
	st.mu.Unlock()
}

func (st *stats) aborted() {
	st.mu.Lock()
	st.s.Aborted++
	st.mu.Unlock()
}

func (st *stats) canceled() {
	st.mu.Lock()
	st.s.Canceled++
	st.mu.Unlock()
}
