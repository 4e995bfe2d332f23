package prefix_test

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sturdyai/sturdy/internal/prefix"
)

// Two turns of one conversation: the second starts with the first, so its
// blocks start with the first's, and a balancer keyed on them can send
// both to the replica that cached the first.
func ExampleRead() {
	system := strings.Repeat("You are a careful assistant. ", 40) // 1160 bytes
	turn1 := `{"model":"llama","stream":true,"user":"u-7","messages":[` +
		`{"role":"system","content":"` + system + `"},` +
		`{"role":"user","content":"Summarise the report."}]}`
	turn2 := `{"model":"llama","user":"u-7","messages":[` +
		`{"role":"system","content":"` + system + `"},` +
		`{"role":"user","content":"Summarise the report."},` +
		`{"role":"assistant","content":"` + strings.Repeat("The report says... ", 30) + `"},` +
		`{"role":"user","content":"Shorter, please."}]}`

	var b1, b2 [prefix.MaxBlocks]uint64
	n1, session, ok := prefix.Read([]byte(turn1), 0, b1[:])
	n2, _, _ := prefix.Read([]byte(turn2), 0, b2[:])
	fmt.Println(n1, string(session.User), ok)
	fmt.Println(n2, slices.Equal(b1[:n1], b2[:n1]))

	_, _, ok = prefix.Read([]byte(`{"messages":[{"role":"user","content":"hi"}`), 0, b1[:])
	fmt.Println(ok)
	// Output:
	// 4 u-7 true
	// 7 true
	// false
}
