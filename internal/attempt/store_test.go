package attempt

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/fakepick"
	"github.com/sturdyai/sturdy/internal/policy"
)

// A sequential attempt with a context of its own gets it in the memory
// store gives right before it runs, and is told so (Info.Stored); an
// attempt without one (no timeout) takes nothing from store. The context
// keeps its contract: it is cancelled when the winner is released.
func TestStoreHoldsASequentialAttemptsContext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		stored  bool
	}{
		{"attempt timeout", time.Minute, true},
		{"no attempt timeout", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := policy.NewRetry(policy.RetryConfig{AttemptTimeout: tc.timeout})
			require.NoError(t, err)
			s := &Spec{Picker: &fakepick.One{EP: sturdy.Endpoint{Name: "a"}}, Retry: r, Op: "test", TierName: "t"}
			var stores []*ContextStore
			store := func() *ContextStore {
				cs := new(ContextStore)
				stores = append(stores, cs)
				return cs
			}
			var got context.Context
			fn := func(ctx context.Context, a Info) (int, sturdy.Outcome) {
				assert.Equal(t, tc.stored, a.Stored)
				got = ctx
				return 1, sturdy.Outcome{Class: sturdy.Success}
			}
			var w Winner
			v, err := RunExcluding(context.Background(), s, nil, fn, nil, time.Time{}, &w, store)
			require.NoError(t, err)
			assert.Equal(t, 1, v)
			if !tc.stored {
				assert.Empty(t, stores)
				w.Release()
				return
			}
			require.Len(t, stores, 1)
			assert.Equal(t, context.Context(&stores[0].c), got, "the attempt runs in the stored context")
			require.NoError(t, got.Err())
			w.Release()
			assert.ErrorIs(t, got.Err(), context.Canceled)
		})
	}
}
