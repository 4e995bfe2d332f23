package balancer

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
)

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" means valid
	}{
		{"zero config", Config{}, ""},
		{"defaults spelled out", Config{Endpoints: pool("a"), PanicThreshold: 0.5, Decay: time.Second, DefaultRTT: time.Millisecond}, ""},
		{"never panic", Config{PanicThreshold: -1}, ""},
		{"always panic", Config{PanicThreshold: 1}, ""},
		{"empty name", Config{Endpoints: []sturdy.Endpoint{{Name: "a"}, {Address: "http://x"}}}, "Config.Endpoints[1].Name is empty"},
		{"duplicate name", Config{Endpoints: pool("a", "b", "a")}, `Config.Endpoints[2].Name "a" duplicates Config.Endpoints[0].Name`},
		{"negative weight", Config{Endpoints: []sturdy.Endpoint{{Name: "a", Weight: -1}}}, `Config.Endpoints[0].Weight -1 (endpoint "a") is negative`},
		{"weights overflow", Config{Endpoints: []sturdy.Endpoint{{Name: "a", Weight: math.MaxInt32}, {Name: "b", Weight: 1}}}, "Config.Endpoints[1].Weight 1"},
		{"unknown policy", Config{Policy: Policy(9)}, "Config.Policy 9 is not a known policy"},
		{"threshold above 1", Config{PanicThreshold: 1.5}, "Config.PanicThreshold 1.5"},
		{"threshold NaN", Config{PanicThreshold: math.NaN()}, "Config.PanicThreshold NaN"},
		{"negative decay", Config{Decay: -time.Second}, "Config.Decay -1s is negative"},
		{"negative default RTT", Config{DefaultRTT: -time.Millisecond}, "Config.DefaultRTT -1ms is negative"},
		{"affinity knobs", Config{Policy: PrefixAffinity, Affinity: Affinity{MinBlocks: 64, LoadBound: -1, Index: -1}}, ""},
		{"affinity index not a power of two", Config{Policy: PrefixAffinity, Affinity: Affinity{Index: 1000}}, ""},
		{"negative min blocks", Config{Affinity: Affinity{MinBlocks: -1}}, "Config.Affinity.MinBlocks -1 is not a number of blocks from 1 to 64"},
		{"min blocks beyond a key", Config{Affinity: Affinity{MinBlocks: 65}}, "Config.Affinity.MinBlocks 65"},
		{"load bound NaN", Config{Affinity: Affinity{LoadBound: math.NaN()}}, "Config.Affinity.LoadBound is NaN"},
		{"warm load bound NaN", Config{Affinity: Affinity{WarmLoadBound: math.NaN()}}, "Config.Affinity.WarmLoadBound is NaN"},
		{"infinite load bounds", Config{Policy: PrefixAffinity, Affinity: Affinity{LoadBound: math.Inf(1), WarmLoadBound: math.Inf(1)}}, ""},
		{"index too large", Config{Affinity: Affinity{Index: 1 << 30}}, "Config.Affinity.Index 1073741824 is more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(tt.cfg)
			if tt.want == "" {
				if err != nil || b == nil {
					t.Fatalf("New = %v, %v; want a Balancer", b, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded; want an error saying %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), "balancer: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %q; want it to start with \"balancer: \" and say %q", err, tt.want)
			}
		})
	}
}

func TestUpdateValidates(t *testing.T) {
	b := mustNew(t, Config{Endpoints: pool("a", "b")})
	for _, eps := range [][]sturdy.Endpoint{
		pool("a", ""),
		pool("c", "c"),
		{{Name: "a", Weight: -2}},
	} {
		err := b.Update(eps)
		if err == nil || !strings.HasPrefix(err.Error(), "balancer: Update: eps[") {
			t.Errorf("Update(%v) = %v; want an error naming the bad element", eps, err)
		}
	}
	if got := names(b.Endpoints()); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("after failed Updates the set is %v, want it unchanged [a b]", got)
	}
}

func TestEndpointsIsACopy(t *testing.T) {
	in := pool("a", "b")
	in[0].Labels = map[string]string{"region": "eu"}
	b := mustNew(t, Config{Endpoints: in})
	in[0].Labels["region"] = "us" // the caller's map is not the balancer's
	in[1].Name = "z"
	got := b.Endpoints()
	got[0].Labels["region"] = "ap"
	got[0].Address = "http://elsewhere"
	again := b.Endpoints()
	if again[0].Labels["region"] != "eu" || again[0].Address != "http://a" || again[1].Name != "b" {
		t.Errorf("Endpoints = %+v; changes to the input or to an earlier result leaked in", again)
	}
}

func names(eps []sturdy.Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.Name)
	}
	return out
}

// Config.Affinity.Index is rounded up to a power of two.
func TestAffinityIndexRoundsUp(t *testing.T) {
	for in, want := range map[int]int{1000: 1024, 1024: 1024, 1025: 2048, 0: DefaultAffinityIndex} {
		p, err := newParams(&Config{Policy: PrefixAffinity, Affinity: Affinity{Index: in}})
		if err != nil {
			t.Fatal(err)
		}
		if p.indexSize != want {
			t.Errorf("Affinity.Index %d: index of %d entries, want %d", in, p.indexSize, want)
		}
	}
}
