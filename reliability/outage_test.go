package reliability

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/sturdyai/sturdy/grpcmw"
	"github.com/sturdyai/sturdy/health"
	"github.com/sturdyai/sturdy/httpmw"
	"github.com/sturdyai/sturdy/reliability/internal/rig"
	"github.com/sturdyai/sturdy/sturdytest"
)

// The outage: every endpoint of every tier down (connections refused) for
// outageFor, after upFor of normal service, then back for recoverFor.
const (
	upFor         = 500 * time.Millisecond
	outageFor     = 2 * time.Second
	recoverFor    = 1500 * time.Millisecond
	outageRate    = 100 // calls per second
	outageDL      = 2 * time.Second
	probeInterval = 200 * time.Millisecond
	// budgetFloor is failover's default BudgetMinPerSecond: retries per
	// second and tier that the retry budget always allows, and
	// budgetWindow its default BudgetWindow. The floor is a reserve of
	// budgetFloor × budgetWindow retries, refilled over the window, so
	// that an outage shorter than the window may spend the whole reserve
	// (a lone endpoint, retried where it is, does).
	budgetFloor  = 3.0
	budgetWindow = 10 * time.Second
)

// callRec is one call of the outage run.
type callRec struct {
	start, end time.Time
	tier       string
	err        bool
}

// outageRun paces calls at outageRate through the three phases, calling
// down and up at the phase changes, and returns every call and the backend
// attempts made between down and up.
func outageRun(t *testing.T, do func(ctx context.Context) (tier string, err error), attempts func() int64, down, up func()) (recs []callRec, outageAttempts int64, downAt, upAt time.Time) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // bounds calls in flight
	tick := time.NewTicker(time.Second / outageRate)
	defer tick.Stop()
	start := time.Now()
	var a0 int64
	phase := 0
	for now := range tick.C {
		el := now.Sub(start)
		if phase == 0 && el >= upFor {
			down()
			downAt, a0, phase = time.Now(), attempts(), 1
		}
		if phase == 1 && el >= upFor+outageFor {
			outageAttempts = attempts() - a0
			up()
			upAt, phase = time.Now(), 2
		}
		if el >= upFor+outageFor+recoverFor {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), outageDL)
			defer cancel()
			s := time.Now()
			tier, err := do(ctx)
			r := callRec{start: s, end: time.Now(), tier: tier, err: err != nil}
			if r.end.Sub(s) > outageDL+slack {
				t.Errorf("call took %v, past its deadline", r.end.Sub(s))
			}
			mu.Lock()
			recs = append(recs, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	return recs, outageAttempts, downAt, upAt
}

// judgeOutage checks amplification during the outage and recovery after
// it, and fills fig.
func judgeOutage(t *testing.T, fig *figure, recs []callRec, outageAttempts int64, downAt, upAt time.Time, tiers int, recoverBound time.Duration) {
	judgeOutageAmp(t, fig, recs, outageAttempts, downAt, upAt, tiers, recoverBound, 1.1)
}

// judgeOutageAmp is judgeOutage with the amplification bound's base: 1.1
// with probes; the number of tiers without them (each tier's first attempt
// of a call is not a retry, so the retry budget does not cover it).
func judgeOutageAmp(t *testing.T, fig *figure, recs []callRec, outageAttempts int64, downAt, upAt time.Time, tiers int, recoverBound time.Duration, base float64) {
	t.Helper()
	var during, after, afterOK int64
	var firstPrimary time.Time
	var late []string
	for _, r := range recs {
		if !r.start.Before(downAt) && r.start.Before(upAt) {
			during++
			if r.err {
				fig.Errors++
			} else {
				fig.OK++
			}
		}
		if r.start.After(upAt) {
			after++
			if !r.err {
				afterOK++
			}
			if !r.err && r.tier == "tier0" && (firstPrimary.IsZero() || r.end.Before(firstPrimary)) {
				firstPrimary = r.end
			}
			if r.start.After(upAt.Add(recoverBound)) && (r.err || r.tier != "tier0") {
				late = append(late, fmt.Sprintf("+%v tier=%q err=%v", r.start.Sub(upAt).Round(time.Millisecond), r.tier, r.err))
			}
		}
	}
	amp := float64(outageAttempts) / float64(during)
	bound := base + budgetFloor*float64(tiers)*max(outageFor, budgetWindow).Seconds()/float64(during)
	recovery := firstPrimary.Sub(upAt)
	t.Logf("outage: %d calls, %d backend attempts, amplification %.3f (bound %.3f); recovery to the primary tier %v (bound %v); %d/%d calls after recovery ok",
		during, outageAttempts, amp, bound, recovery.Round(time.Millisecond), recoverBound, afterOK, after)
	if amp > bound {
		t.Errorf("load amplification during the outage %.3f > %.3f (%.1f + the retry budget's floor)", amp, bound, base)
	}
	if firstPrimary.IsZero() || recovery > recoverBound {
		t.Errorf("the primary tier served again %v after the servers came back; want within %v", recovery, recoverBound)
	}
	if len(late) > 0 {
		t.Errorf("%d calls after recovery were not served by the primary tier: %v", len(late), late)
	}
	fig.Calls, fig.Attempts = during, outageAttempts // the figures are the outage's
	fig.Note = fmt.Sprintf("figures for the calls started during the outage; amplification bound %.2f; primary tier back %v after the servers; %d of %d calls after the outage answered",
		bound, recovery.Round(time.Millisecond), afterOK, after)
}

// TestHTTPTotalOutage takes down every endpoint of both tiers for 2s under
// 100 calls/s, then brings them back. With active probes every 200ms:
// backend attempts per call during the outage stay within 1.1 plus the
// retry budget's floor (a tier whose endpoints are all ejected is skipped),
// the primary tier serves again within one probe interval, and nothing
// leaks.
func TestHTTPTotalOutage(t *testing.T) {
	leaks := leakCheck(t)
	r := newHTTPRig(t, [][]string{{"a", "b"}, {"c"}}, []string{"big", "small"}, sturdytest.Config{},
		httpmw.WithProbes(health.ProbeConfig{Interval: probeInterval, Timeout: 100 * time.Millisecond, Jitter: -1}))
	do := func(ctx context.Context) (string, error) {
		resp, err := r.client.Do(chatReq(ctx, "big", false))
		if err != nil {
			checkCallError(t, err)
			return "", err
		}
		defer resp.Body.Close()
		if _, err := readAllErr(resp); err != nil || resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %d, %v", resp.StatusCode, err)
		}
		return resp.Header.Get(httpmw.HeaderTier), nil
	}
	chat := func() int64 { return r.count.Path("/v1/chat/completions") }
	recs, oa, downAt, upAt := outageRun(t, do, chat,
		func() { r.setEnabled(t, false) }, func() { r.setEnabled(t, true) })
	fig := figure{Order: 100, Fault: "total outage: every endpoint of both tiers refused for 2 s, then back", Adapter: "httpmw",
		Does: "probes eject every endpoint, tiers with no allowed endpoint are skipped, the retry budget caps retries; a successful probe brings the primary back", Deadline: outageDL}
	judgeOutage(t, &fig, recs, oa, downAt, upAt, 2, probeInterval+150*time.Millisecond)
	finishOutage(t, &fig, recs, r.close, leaks)
}

func (r *httpRig) setEnabled(t *testing.T, on bool) { setEnabled(t, r.names, r.proxies, on) }

// TestGRPCTotalOutage is TestHTTPTotalOutage for grpcmw, with
// grpc.health.v1 probes every 200ms. A conn that lost its server reconnects
// with grpc-go's backoff (kept at most 200ms here), so the bound on
// recovery is a probe interval plus that backoff.
func TestGRPCTotalOutage(t *testing.T) {
	leaks := leakCheck(t)
	r := newGRPCRig(t, [][]string{{"a", "b"}, {"c"}}, []string{"big", "small"},
		grpcmw.WithProbes(health.ProbeConfig{Interval: probeInterval, Timeout: 100 * time.Millisecond, Jitter: -1}))
	tierOf := map[string]string{"a": "tier0", "b": "tier0", "c": "tier1"}
	do := func(ctx context.Context) (string, error) {
		resp, err := r.stub.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(prompt)}})
		if err != nil {
			checkCallError(t, err)
			return "", err
		}
		return tierOf[resp.GetServerId()], nil
	}
	var total func() int64 = r.count.N
	recs, oa, downAt, upAt := outageRun(t, do, total,
		func() { r.setEnabled(t, false) }, func() { r.setEnabled(t, true) })
	fig := figure{Order: 101, Fault: "total outage: every endpoint of both tiers refused for 2 s, then back", Adapter: "grpcmw",
		Does: "grpc.health.v1 probes eject every endpoint, tiers with no allowed endpoint are skipped, the retry budget caps retries; a SERVING probe brings the primary back", Deadline: outageDL}
	judgeOutage(t, &fig, recs, oa, downAt, upAt, 2, probeInterval+200*time.Millisecond+150*time.Millisecond)
	finishOutage(t, &fig, recs, r.close, leaks)
}

func (r *grpcRig) setEnabled(t *testing.T, on bool) { setEnabled(t, r.names, r.proxies, on) }

// TestHTTPTotalOutageWithoutProbes is TestHTTPTotalOutage with passive
// health only. Passive ejection is capped (10% of endpoints, at least one),
// so no tier is ever skipped: every call spends a first attempt on each
// tier, and amplification is bounded by the number of tiers (plus the
// budget's floor), not by 1.1. The figure shows why the outage test turns
// probes on.
func TestHTTPTotalOutageWithoutProbes(t *testing.T) {
	leaks := leakCheck(t)
	r := newHTTPRig(t, [][]string{{"a", "b"}, {"c"}}, []string{"big", "small"}, sturdytest.Config{})
	do := func(ctx context.Context) (string, error) {
		resp, err := r.client.Do(chatReq(ctx, "big", false))
		if err != nil {
			checkCallError(t, err)
			return "", err
		}
		defer resp.Body.Close()
		if _, err := readAllErr(resp); err != nil || resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %d, %v", resp.StatusCode, err)
		}
		return resp.Header.Get(httpmw.HeaderTier), nil
	}
	chat := func() int64 { return r.count.Path("/v1/chat/completions") }
	recs, oa, downAt, upAt := outageRun(t, do, chat,
		func() { r.setEnabled(t, false) }, func() { r.setEnabled(t, true) })
	fig := figure{Order: 102, Fault: "the same total outage, passive health only (no probes)", Adapter: "httpmw",
		Does: "no tier can be skipped (passive ejection is capped), so each call spends one attempt per tier; the retry budget caps retries beyond that", Deadline: outageDL}
	judgeOutageAmp(t, &fig, recs, oa, downAt, upAt, 2, probeInterval+150*time.Millisecond, 2)
	finishOutage(t, &fig, recs, r.close, leaks)
}

// setEnabled turns every named proxy on or off.
func setEnabled(t *testing.T, names []string, proxies map[string]*rig.Proxy, on bool) {
	for _, n := range names {
		var err error
		if on {
			err = proxies[n].Enable()
		} else {
			err = proxies[n].Disable()
		}
		if err != nil {
			t.Error(err)
		}
	}
}

// finishOutage fills in the figure's slowest call, open connections and
// leaks, and records it.
func finishOutage(t *testing.T, fig *figure, recs []callRec, closeRig func() int64, leaks func() int) {
	for _, rc := range recs {
		fig.Slowest = max(fig.Slowest, rc.end.Sub(rc.start))
	}
	fig.OpenConn = closeRig()
	fig.Leaked = leaks()
	record(t, *fig)
}
