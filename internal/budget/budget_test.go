package budget

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestBudgetRatioAndFloor(t *testing.T) {
	tests := []struct {
		name  string
		ratio float64
		floor float64
		calls int
		want  int
	}{
		{"ratio only", 0.1, 0, 1000, 100},
		{"floor only", 0, 3, 0, 30},
		{"both", 0.1, 3, 1000, 130},
		{"nothing", 0, 0, 1000, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := New(tc.ratio, tc.floor, 10*time.Second)
				now := time.Now()
				for range tc.calls {
					b.Deposit(now)
				}
				got := 0
				for b.TryWithdraw(now) {
					got++
					if got > 10*tc.calls+100 {
						t.Fatal("budget never ran out")
					}
				}
				if got != tc.want {
					t.Fatalf("withdrawals = %d, want %d", got, tc.want)
				}
			})
		})
	}
}

func TestBudgetWindowSlides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(0.5, 0, 10*time.Second)
		for range 100 {
			b.Deposit(time.Now())
		}
		if got := b.Balance(time.Now()); got != 50 {
			t.Fatalf("balance = %v, want 50", got)
		}
		time.Sleep(5 * time.Second)
		if got := b.Balance(time.Now()); got != 50 {
			t.Fatalf("balance after 5s = %v, want 50 (still in window)", got)
		}
		time.Sleep(6 * time.Second)
		if got := b.Balance(time.Now()); got != 0 {
			t.Fatalf("balance after 11s = %v, want 0 (deposits expired)", got)
		}
		// Withdrawals expire too: a budget drained long ago is whole again.
		b.Deposit(time.Now())
		b.Deposit(time.Now())
		if !b.TryWithdraw(time.Now()) {
			t.Fatal("withdraw refused with balance 1")
		}
		if b.TryWithdraw(time.Now()) {
			t.Fatal("withdraw allowed with balance 0")
		}
		time.Sleep(11 * time.Second)
		b.Deposit(time.Now())
		b.Deposit(time.Now())
		if !b.TryWithdraw(time.Now()) {
			t.Fatal("old withdrawal still counted after the window")
		}
	})
}

func BenchmarkDepositParallel(b *testing.B) {
	bd := New(0.1, 3, 10*time.Second)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bd.Deposit(time.Now())
		}
	})
}
