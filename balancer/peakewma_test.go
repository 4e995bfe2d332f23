package balancer

import (
	"math"
	"testing"
	"time"
	"unsafe"
)

func TestPeakEWMA(t *testing.T) {
	const tau = float64(10 * time.Second)
	ms := func(f float64) float64 { return f * float64(time.Millisecond) }
	at := func(d time.Duration) int64 { return int64(d) }
	type step struct {
		observe, raise float64 // sample to fold in (0: none)
		at             time.Duration
		want           float64 // estimate read at the step's time, after the sample
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"starts at its initial cost", []step{{at: 0, want: ms(30)}}},
		{"decays toward zero when idle", []step{
			{at: 10 * time.Second, want: ms(30) / math.E},
			{at: 20 * time.Second, want: ms(30) / (math.E * math.E)},
		}},
		{"a peak replaces the estimate", []step{
			{observe: ms(500), at: time.Second, want: ms(500)},
		}},
		{"a lower sample on a busy endpoint barely moves it", []step{
			{observe: ms(10), at: time.Millisecond, want: ms(30)*w(1e6, tau)*w(1e6, tau) + ms(10)*(1-w(1e6, tau))},
		}},
		{"a lower sample after a long idle is taken nearly as is", []step{
			{observe: ms(500), at: 0, want: ms(500)},
			{observe: ms(20), at: 5 * time.Second, want: ms(500)*w(5e9, tau)*w(5e9, tau) + ms(20)*(1-w(5e9, tau))},
		}},
		{"a sample above the decayed estimate is a peak", []step{
			{observe: ms(100), at: 0, want: ms(100)},
			{observe: ms(99), at: time.Second, want: ms(99)}, // 100ms decayed to 90.5ms
		}},
		{"a lower sample pulls the estimate toward itself", []step{
			{observe: ms(100), at: 0, want: ms(100)},
			{observe: ms(80), at: time.Second, want: ms(100)*w(1e9, tau)*w(1e9, tau) + ms(80)*(1-w(1e9, tau))},
		}},
		{"raise lifts to a higher lower bound", []step{
			{raise: ms(200), at: time.Second, want: ms(200)},
		}},
		{"raise ignores a lower bound below the estimate", []step{
			{raise: ms(5), at: 0, want: ms(30)},
		}},
		{"a clock read that lags the stamp counts as no time", []step{
			{observe: ms(100), at: 2 * time.Second, want: ms(100)},
			{observe: ms(50), at: time.Second, want: ms(100)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p peakEWMA
			p.init(ms(30), 0)
			for i, s := range tt.steps {
				if s.observe > 0 {
					p.observe(s.observe, at(s.at), decay{rate: 1 / tau}, nil, baseSample)
				}
				if s.raise > 0 {
					p.raise(s.raise, at(s.at), decay{rate: 1 / tau}, nil)
				}
				_, stamp := p.load()
				got := p.at(max(at(s.at), stamp), decay{rate: 1 / tau})
				if math.Abs(got-s.want) > 1e-6*s.want {
					t.Errorf("step %d: estimate = %v, want %v", i, time.Duration(got), time.Duration(s.want))
				}
			}
		})
	}
}

func w(dt, tau float64) float64 { return math.Exp(-dt / tau) }

// A lower sample must land between itself and the estimate it replaces.
func TestPeakEWMALowerSampleStaysBetween(t *testing.T) {
	const tau = float64(10 * time.Second)
	var p peakEWMA
	p.init(float64(time.Second), 0)
	for i, dt := range []time.Duration{time.Microsecond, time.Millisecond, time.Second, 10 * time.Second, time.Minute} {
		now := int64(time.Duration(i+1)*2*time.Minute + dt)
		p.observe(float64(time.Second), now-int64(dt), decay{rate: 1 / tau}, nil, baseSample) // reset to 1s
		before := p.at(now, decay{rate: 1 / tau})
		x := before / 3
		p.observe(x, now, decay{rate: 1 / tau}, nil, baseSample)
		if after := p.at(now, decay{rate: 1 / tau}); after < x || after > before {
			t.Errorf("Δt %v: sample %v moved the estimate from %v to %v, outside [sample, before]",
				dt, time.Duration(x), time.Duration(before), time.Duration(after))
		}
	}
}

func TestWeightMatchesExp(t *testing.T) {
	const tau = float64(10 * time.Second)
	for _, dt := range []int64{-5, 0, 1, 1e3, 1e6, 9.9e6, 1e7, 1.01e7, 1e9, 1e10, 1e12} {
		want := 1.0
		if dt > 0 {
			want = math.Exp(-float64(dt) / tau)
		}
		if got := weight(dt, 1/tau); math.Abs(got-want) > 1e-13 {
			t.Errorf("weight(%v) = %.17g, want exp = %.17g", time.Duration(dt), got, want)
		}
	}
}

// Readers must never see one write's cost with another write's stamp.
func TestPeakEWMAReadsAreConsistent(t *testing.T) {
	var p peakEWMA
	p.init(1, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			for ts := int64(2); ; ts++ {
				select {
				case <-stop:
					return
				default:
				}
				// A peak at the same time as the stamp: cost == stamp.
				c, _ := p.lock()
				_ = c
				p.unlock(float64(ts), ts)
			}
		}()
	}
	for range 200000 {
		if c, ts := p.load(); c != float64(ts) {
			t.Fatalf("torn read: cost %v with stamp %v", c, ts)
		}
	}
	close(stop)
	<-done
	<-done
}

// load must fill two cache lines exactly, so that its allocation size
// class keeps it aligned to them.
func TestLoadLayout(t *testing.T) {
	if s, o := unsafe.Sizeof(load{}), unsafe.Offsetof(load{}.p); s != 2*cacheLine || o != cacheLine {
		t.Fatalf("load is %d bytes with its read-mostly half at %d, want %d and %d", s, o, 2*cacheLine, cacheLine)
	}
}
