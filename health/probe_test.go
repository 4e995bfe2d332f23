package health

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sturdyai/sturdy"
)

// fakeProber answers from a script per endpoint and records when each
// probe started (as offsets from start).
type fakeProber struct {
	start  time.Time
	answer func(ep string, n int) error // n counts the endpoint's probes from 0

	mu    sync.Mutex
	times map[string][]time.Duration
}

func (f *fakeProber) Probe(ctx context.Context, ep sturdy.Endpoint) error {
	f.mu.Lock()
	n := len(f.times[ep.Name])
	f.times[ep.Name] = append(f.times[ep.Name], time.Since(f.start))
	f.mu.Unlock()
	if err := f.answer(ep.Name, n); err != nil {
		if err.Error() == "hang" {
			<-ctx.Done()
			return ctx.Err()
		}
		return err
	}
	return nil
}

func (f *fakeProber) probeTimes(name string) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.times[name]...)
}

// setRand makes the jitter deterministic for one test.
func setRand(t *testing.T, v float64) {
	old := randFloat
	randFloat = func() float64 { return v }
	t.Cleanup(func() { randFloat = old })
}

func endpoints(names ...string) []sturdy.Endpoint {
	eps := make([]sturdy.Endpoint, len(names))
	for i, n := range names {
		eps[i] = sturdy.Endpoint{Name: n, Address: "http://" + n}
	}
	return eps
}

func TestRunProbes(t *testing.T) {
	setRand(t, 0.5) // no jitter: every 10s
	synctest.Test(t, func(t *testing.T) {
		tr, r := newTracker(t, Config{})
		tr.Add("up").Observe(authO) // ejected before probing starts
		f := &fakeProber{start: time.Now(), times: map[string][]time.Duration{}, answer: func(ep string, n int) error {
			switch {
			case ep == "down":
				return errors.New("refused")
			case ep == "hung":
				return errors.New("hang")
			case ep == "recovers" && n == 0:
				return errors.New("refused")
			}
			return nil
		}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- tr.RunProbes(ctx, f, endpoints("up", "down", "hung", "recovers"), ProbeConfig{}) }()

		time.Sleep(25 * time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("RunProbes = %v, want nil after cancel", err)
		}
		for name, want := range map[string][]time.Duration{
			"up":   {0, 10 * time.Second, 20 * time.Second},
			"hung": {0, 10 * time.Second, 20 * time.Second}, // starts every interval despite the 2s timeouts
		} {
			if got := f.probeTimes(name); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s probed at %v, want %v", name, got, want)
			}
		}
		for name, want := range map[string]State{"up": Probation, "down": Ejected, "hung": Ejected, "recovers": Probation} {
			if got := tr.State(name); got != want {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
		var hungAt time.Duration = -1
		for _, sc := range r.changes() {
			if sc.Endpoint == "hung" && sc.To == Ejected {
				hungAt = sc.At.Sub(f.start)
				if sc.Reason != ReasonProbeFailure {
					t.Errorf("hung ejected for %q, want %q", sc.Reason, ReasonProbeFailure)
				}
			}
			if sc.Endpoint == "recovers" && sc.To == Probation && sc.Reason != ReasonProbeSuccess {
				t.Errorf("recovers left ejection for %q, want %q", sc.Reason, ReasonProbeSuccess)
			}
		}
		if hungAt != 2*time.Second {
			t.Errorf("hung ejected at %v, want at its 2s probe timeout", hungAt)
		}
	})
}

func TestRunProbesJitter(t *testing.T) {
	tests := []struct {
		name   string
		rand   float64
		jitter float64
		want   time.Duration
	}{
		{"lowest draw", 0, 0, 9 * time.Second},
		{"upper draw", 0.75, 0, 10*time.Second + 500*time.Millisecond},
		{"wider jitter", 0, 0.5, 5 * time.Second},
		{"jitter off", 0, -1, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setRand(t, tt.rand)
			synctest.Test(t, func(t *testing.T) {
				tr, _ := newTracker(t, Config{})
				f := &fakeProber{start: time.Now(), times: map[string][]time.Duration{}, answer: func(string, int) error { return nil }}
				ctx, cancel := context.WithTimeout(t.Context(), 2*tt.want+tt.want/2)
				defer cancel()
				if err := tr.RunProbes(ctx, f, endpoints("a"), ProbeConfig{Jitter: tt.jitter}); err != nil {
					t.Fatal(err)
				}
				want := []time.Duration{0, tt.want, 2 * tt.want}
				if got := f.probeTimes("a"); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("probed at %v, want %v", got, want)
				}
			})
		})
	}
}

func TestRunProbesRejectsBadArguments(t *testing.T) {
	tr, _ := newTracker(t, Config{})
	f := &fakeProber{times: map[string][]time.Duration{}, answer: func(string, int) error { return nil }}
	tests := []struct {
		name string
		p    Prober
		eps  []sturdy.Endpoint
		cfg  ProbeConfig
	}{
		{"nil prober", nil, endpoints("a"), ProbeConfig{}},
		{"bad config", f, endpoints("a"), ProbeConfig{Timeout: -1}},
		{"duplicate names", f, endpoints("a", "b", "a"), ProbeConfig{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tr.RunProbes(t.Context(), tt.p, tt.eps, tt.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), "health: ") {
				t.Fatalf("err = %v, want a health: error", err)
			}
		})
	}
	if tr.Member("a") != nil {
		t.Fatal("RunProbes added members although it refused to start")
	}
}

// The tests below use real loopback sockets, which do not mix with
// synctest; they wait on events, never on sleeps.

func TestHTTPProber(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	status := map[string]int{"/health": 200, "/empty": 204, "/sick": 503, "/v2/health/ready": 200, "/ready": 200}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		code, ok := status[r.URL.Path]
		if !ok {
			code = 404
		}
		w.WriteHeader(code)
		fmt.Fprint(w, strings.Repeat("x", 1000))
	}))
	defer srv.Close()

	tests := []struct {
		name    string
		prober  HTTPProber
		address string
		path    string // the path the server must see
		wantErr string // "" for success
	}{
		{"default path and client", HTTPProber{}, srv.URL, "/health", ""},
		{"2xx other than 200", HTTPProber{Path: "/empty"}, srv.URL, "/empty", ""},
		{"5xx fails", HTTPProber{Path: "/sick"}, srv.URL, "/sick", "503"},
		{"404 fails", HTTPProber{Path: "/nope"}, srv.URL, "/nope", "404"},
		{"one slash between address and path", HTTPProber{Path: "ready"}, srv.URL + "/", "/ready", ""},
		{"address with a base path", HTTPProber{Client: srv.Client(), Path: "/health/ready"}, srv.URL + "/v2/", "/v2/health/ready", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.prober.Probe(t.Context(), sturdy.Endpoint{Name: "a", Address: tt.address})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Probe = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "health: probe a")):
				t.Fatalf("Probe = %v, want a health: probe a error mentioning %s", err, tt.wantErr)
			}
			mu.Lock()
			got := paths[len(paths)-1]
			mu.Unlock()
			if got != tt.path {
				t.Fatalf("server saw %s, want %s", got, tt.path)
			}
		})
	}

	refused := httptest.NewServer(http.NotFoundHandler())
	addr := refused.URL
	refused.Close()
	if err := (HTTPProber{}).Probe(t.Context(), sturdy.Endpoint{Name: "gone", Address: addr}); err == nil {
		t.Fatal("probe of a closed server succeeded")
	}
}

func TestRunProbesWithHTTPProberEjectsSickServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ejected := make(chan StateChange, 1)
	tr, err := New(Config{OnStateChange: func(sc StateChange) {
		select {
		case ejected <- sc:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- tr.RunProbes(ctx, HTTPProber{Client: srv.Client()}, []sturdy.Endpoint{{Name: "vllm-0", Address: srv.URL}}, ProbeConfig{})
	}()
	select {
	case sc := <-ejected:
		if sc.Endpoint != "vllm-0" || sc.To != Ejected || sc.Reason != ReasonProbeFailure {
			t.Errorf("change = %+v, want vllm-0 ejected by probe_failure", sc)
		}
	case <-time.After(10 * time.Second):
		t.Error("no ejection within 10s of the first probe")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunProbes = %v", err)
	}
}

func TestProbeConfigValidate(t *testing.T) {
	if err := (ProbeConfig{}).Validate(); err != nil {
		t.Fatalf("the zero config (all defaults): %v", err)
	}
	for _, c := range []ProbeConfig{{Jitter: 1}, {Jitter: math.NaN()}, {Interval: -1}, {Timeout: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
