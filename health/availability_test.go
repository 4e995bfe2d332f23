package health

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestAvailabilityFromScriptedHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _ := newTracker(t, Config{})
		m := tr.Add("a")
		check := func(step string, want Availability) {
			t.Helper()
			if got := m.Availability(); got != want {
				t.Fatalf("%s: availability = %+v, want %+v", step, got, want)
			}
		}
		check("just added", Availability{Availability: 1})

		time.Sleep(90 * time.Second)
		check("up 90s, no failures", Availability{Uptime: 90 * time.Second, MTBF: 90 * time.Second, Availability: 1})

		m.Observe(authO)             // ejected for 30s
		time.Sleep(10 * time.Second) // the current ejection counts so far
		check("ejected 10s so far", Availability{
			Uptime: 90 * time.Second, Downtime: 10 * time.Second, Failures: 1,
			MTBF: 90 * time.Second, MTTR: 10 * time.Second, Availability: 0.9,
		})

		time.Sleep(80 * time.Second) // expired at 30s, 60s since in probation
		check("up 90s, ejected 30s, up 60s", Availability{
			Uptime: 150 * time.Second, Downtime: 30 * time.Second, Failures: 1,
			MTBF: 150 * time.Second, MTTR: 30 * time.Second, Availability: 150.0 / 180,
		})

		m.Observe(okO)
		m.Observe(authO) // second ejection: no time spent healthy, so it lasts 60s
		time.Sleep(time.Hour)
		// Up 90s + 60s + (1h − 60s), down 30s + 60s.
		check("two failures", Availability{
			Uptime: time.Hour + 90*time.Second, Downtime: 90 * time.Second, Failures: 2,
			MTBF: time.Hour/2 + 45*time.Second, MTTR: 45 * time.Second,
			Availability: float64(time.Hour+90*time.Second) / float64(time.Hour+180*time.Second),
		})
		a, ok := tr.Availability("a")
		if !ok || a.Failures != 2 {
			t.Fatalf("Tracker.Availability = %+v, %v", a, ok)
		}
	})
}

func TestAvailabilityEqualsMTBFShare(t *testing.T) {
	a := newAvailability(150*time.Second, 30*time.Second, 3)
	viaMeans := float64(a.MTBF) / float64(a.MTBF+a.MTTR)
	if diff := a.Availability - viaMeans; diff > 1e-12 || diff < -1e-12 {
		t.Fatalf("uptime share %v != MTBF/(MTBF+MTTR) %v", a.Availability, viaMeans)
	}
}
