package prefix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// read is Read into a fresh MaxBlocks array, with block size bs.
func read(t testing.TB, body string, bs int) (blocks []uint64, session string, ok bool) {
	t.Helper()
	var out [MaxBlocks]uint64
	n, s, ok := Read([]byte(body), bs, out[:])
	if !ok && (n != 0 || s.Get() != nil) {
		t.Fatalf("Read(%.60q) = %d blocks, session %q with ok false", body, n, s.Get())
	}
	return out[:n], string(s.Get()), ok
}

// chat returns a chat-completions body with the given extra members
// (`"k":v` pairs, spliced in as written) and messages.
func chat(extra string, msgs ...string) string {
	var b strings.Builder
	b.WriteString(`{"model":"m","messages":[`)
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m)
	}
	b.WriteString(`]`)
	if extra != "" {
		b.WriteString(",")
		b.WriteString(extra)
	}
	b.WriteString(`}`)
	return b.String()
}

func msg(role, content string) string {
	r, _ := json.Marshal(role)
	c, _ := json.Marshal(content)
	return fmt.Sprintf(`{"role":%s,"content":%s}`, r, c)
}

// text returns n bytes of prose-like text whose blocks differ (seeded by
// tag) with newlines and quotes, so that the JSON form has escapes.
func text(tag string, n int) string {
	words := []string{"the", "cache", "of", "a", "replica", `"holds"`, "blocks", "prefill", "costs", "tokens\n"}
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(words[(i*7+len(tag)+int(tag[0]))%len(words)])
		b.WriteString(" ")
		if i%13 == 0 {
			fmt.Fprintf(&b, "%s%d ", tag, i)
		}
	}
	return b.String()[:n]
}

func TestReadEquivalentBodiesGiveOneKey(t *testing.T) {
	long := text("a", 3000)
	base := chat("", msg("system", long), msg("user", "hello"))
	tests := []struct{ name, body string }{
		{"stream true", chat(`"stream":true`, msg("system", long), msg("user", "hello"))},
		{"stream false and options", chat(`"stream":false,"max_tokens":7,"temperature":0.5,"stop":["\n"]`, msg("system", long), msg("user", "hello"))},
		{"whitespace", strings.ReplaceAll(base, `,"`, ",\n  \"")},
		{"content before role", chat("", msg("system", long), `{"content":"hello","role":"user"}`)},
		{"one text part", chat("", msg("system", long), `{"role":"user","content":[{"type":"text","text":"hello"}]}`)},
		{"part members reordered", chat("", msg("system", long), `{"role":"user","content":[{"text":"hello","type":"text"}]}`)},
		{"escaped letters", chat("", msg("system", long), `{"role":"user","content":"h\u0065llo"}`)},
		{"escaped key", chat("", msg("system", long), `{"r\u006fle":"user","content":"hello"}`)},
		{"model after messages", `{"messages":[` + msg("system", long) + `,` + msg("user", "hello") + `],"model":"m"}`},
		{"unknown fields", chat(`"tools":[{"type":"function"}],"n":1,"x":{"y":[null,true,false,-1.5e3]}`, msg("system", long), msg("user", "hello"))},
		{"user does not seed", chat(`"user":"u-1"`, msg("system", long), msg("user", "hello"))},
	}
	want, _, ok := read(t, base, 0)
	// The hashed stream: role, separator, content, separator, per message,
	// the content escaped as JSON (quotes and line breaks take two bytes).
	stream := len("system") + 1 + len(canonicalForm(long)) + 1 + len("user") + 1 + len("hello") + 1
	if !ok || len(want) != stream/DefaultBlockSize {
		t.Fatalf("base: %d blocks, ok %v; want %d", len(want), ok, stream/DefaultBlockSize)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, ok := read(t, tt.body, 0)
			if !ok || !slices.Equal(got, want) {
				t.Errorf("blocks %x (ok %v), want the base body's %x", got, ok, want)
			}
		})
	}
}

func TestReadDifferentPromptsGiveDifferentKeys(t *testing.T) {
	long := text("a", 3000)
	base := chat("", msg("system", long), msg("user", "hello"))
	tests := []struct{ name, body string }{
		{"other model", strings.Replace(base, `"model":"m"`, `"model":"m2"`, 1)},
		{"no model", strings.Replace(base, `"model":"m",`, ``, 1)},
		{"cache salt", chat(`"cache_salt":"tenant-a"`, msg("system", long), msg("user", "hello"))},
		{"other role", chat("", msg("developer", long), msg("user", "hello"))},
		{"role moved into content", chat("", msg("", "system"+long), msg("user", "hello"))},
		{"image part", chat("", `{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:x"}},{"type":"text","text":`+jsonString(long)+`}]}`, msg("user", "hello"))},
	}
	want, _, _ := read(t, base, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, ok := read(t, tt.body, 0)
			if !ok || len(got) == 0 {
				t.Fatalf("no key (ok %v)", ok)
			}
			if got[0] == want[0] {
				t.Errorf("first block %x equals the base body's", got[0])
			}
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestReadSharedPrefixSharesLeadingBlocks(t *testing.T) {
	sys := text("s", 5*DefaultBlockSize+100) // 5 whole blocks, then the user's
	a, _, _ := read(t, chat("", msg("system", sys), msg("user", text("x", 1000))), 0)
	b, _, _ := read(t, chat("", msg("system", sys), msg("user", text("y", 1000))), 0)
	if len(a) < 6 || len(b) < 6 {
		t.Fatalf("blocks: %d and %d, want at least 6 each", len(a), len(b))
	}
	if !slices.Equal(a[:5], b[:5]) {
		t.Errorf("the first 5 blocks (the shared system prompt) differ:\n%x\n%x", a[:5], b[:5])
	}
	for i := 5; i < min(len(a), len(b)); i++ {
		if a[i] == b[i] {
			t.Errorf("block %d agrees though the prompts differ from block 5 on", i)
		}
	}
	// A later turn of a conversation extends it: every block of the
	// earlier turn is a block of the later one.
	turn1 := chat("", msg("system", sys), msg("user", "q1"))
	turn2 := chat("", msg("system", sys), msg("user", "q1"), msg("assistant", text("r", 900)), msg("user", "q2"))
	t1, _, _ := read(t, turn1, 0)
	t2, _, _ := read(t, turn2, 0)
	if len(t2) <= len(t1) || !slices.Equal(t1, t2[:len(t1)]) {
		t.Errorf("turn 2's blocks %x do not extend turn 1's %x", t2, t1)
	}
}

func TestReadBounds(t *testing.T) {
	body := []byte(chat("", msg("user", text("a", 100*DefaultBlockSize))))
	var out [MaxBlocks]uint64
	if n, _, ok := Read(body, 0, out[:]); !ok || n != MaxBlocks {
		t.Errorf("a 25 KiB prompt gives %d blocks (ok %v), want the cap %d", n, ok, MaxBlocks)
	}
	short := out
	if n, _, _ := Read(body, 0, short[:3]); n != 3 || !slices.Equal(short[:3], out[:3]) {
		t.Errorf("into 3 slots: %d blocks %x, want the first 3 of the full read %x", n, short[:3], out[:3])
	}
	if n, _, ok := Read(body, 0, nil); n != 0 || !ok {
		t.Errorf("into no slots: %d blocks, ok %v; want 0, true", n, ok)
	}
	if n, _, ok := Read([]byte(chat("", msg("user", "hi"))), 0, out[:]); n != 0 || !ok {
		t.Errorf("a prompt shorter than a block: %d blocks, ok %v; want 0, true", n, ok)
	}
	for _, bs := range []int{1, 7, 16, 100, 4096} {
		n, _, _ := Read(body, bs, out[:])
		if want := min(MaxBlocks, (len(canonicalForm(text("a", 100*DefaultBlockSize)))+len("user")+2)/bs); n != want {
			t.Errorf("block size %d: %d blocks, want %d", bs, n, want)
		}
	}
}

func TestReadCompletions(t *testing.T) {
	p := text("p", 1000)
	got, _, ok := read(t, `{"model":"m","prompt":`+jsonString(p)+`,"max_tokens":5}`, 0)
	if want := len(canonicalForm(p)) / DefaultBlockSize; !ok || len(got) != want {
		t.Fatalf("%d blocks, ok %v; want %d", len(got), ok, want)
	}
	c := newChain(0, DefaultBlockSize, make([]uint64, MaxBlocks))
	c.write([]byte(canonicalForm(p)))
	for i := range c.n {
		c.out[i] = Mix(Mix(Sum64(k2, "m"), Sum64(k3, "")), c.out[i])
	}
	if !slices.Equal(got, c.out[:c.n]) {
		t.Errorf("blocks %x, want the prompt's bytes chained %x", got, c.out[:c.n])
	}
	// The same text as a chat message is another prompt.
	asChat, _, _ := read(t, chat("", msg("user", p)), 0)
	if asChat[0] == got[0] {
		t.Error("a completion prompt and a chat message with the same text share a key")
	}
}

func TestReadSession(t *testing.T) {
	tests := []struct{ extra, want string }{
		{``, ""},
		{`"user":"u-1"`, "u-1"},
		{`"prompt_cache_key":"conv-9"`, "conv-9"},
		{`"user":"u-1","prompt_cache_key":"conv-9"`, "conv-9"},
		{`"prompt_cache_key":"","user":"u-1"`, "u-1"},
		{`"user":42`, ""},
		{`"user":"a\"b"`, `a\"b`},
	}
	for _, tt := range tests {
		_, got, ok := read(t, chat(tt.extra, msg("user", "hi")), 0)
		if !ok || got != tt.want {
			t.Errorf("%s: session %q (ok %v), want %q", tt.extra, got, ok, tt.want)
		}
	}
}

func TestReadRejectsOtherShapes(t *testing.T) {
	long := jsonString(text("a", 600))
	tests := []struct{ name, body string }{
		{"empty", ``},
		{"not JSON", `hello`},
		{"array", `[{"messages":[]}]`},
		{"truncated", chat("", msg("user", text("a", 600)))[:300]},
		{"unterminated string", `{"prompt":"abc`},
		{"trailing garbage", `{"prompt":` + long + `} x`},
		{"two objects", `{"prompt":` + long + `}{}`},
		{"trailing comma in object", `{"prompt":` + long + `,}`},
		{"trailing comma in array", `{"messages":[{"role":"user","content":` + long + `},]}`},
		{"missing colon", `{"prompt" ` + long + `}`},
		{"missing comma", `{"model":"m" "prompt":` + long + `}`},
		{"bad unicode escape", `{"prompt":"\u12G4` + long[1:] + `}`},
		{"value missing at the end", `{"prompt":`},
		{"element missing at the end", `{"messages":[{"role":"user","content":` + long + `},`},
		{"bad literal", `{"stream":tru,"prompt":` + long + `}`},
		{"neither messages nor prompt", `{"model":"m","input":` + long + `}`},
		{"both messages and prompt", `{"prompt":` + long + `,"messages":[{"role":"user","content":` + long + `}]}`},
		{"messages not an array", `{"messages":{"role":"user","content":` + long + `}}`},
		{"messages null", `{"messages":null}`},
		{"message not an object", `{"messages":[` + long + `]}`},
		{"role missing", `{"messages":[{"content":` + long + `}]}`},
		{"role not a string", `{"messages":[{"role":1,"content":` + long + `}]}`},
		{"content a number", `{"messages":[{"role":"user","content":12}]}`},
		{"part not an object", `{"messages":[{"role":"user","content":[` + long + `]}]}`},
		{"part without type", `{"messages":[{"role":"user","content":[{"text":` + long + `}]}]}`},
		{"text part without text", `{"messages":[{"role":"user","content":[{"type":"text"}]}]}`},
		{"prompt an array", `{"prompt":[` + long + `]}`},
		{"prompt tokens", `{"prompt":[1,2,3]}`},
		{"too deep", `{"prompt":` + long + `,"x":` + strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, s, ok := read(t, tt.body, 0); ok || len(got) > 0 || s != "" {
				t.Errorf("Read = %d blocks, session %q, ok %v; want no key", len(got), s, ok)
			}
		})
	}
}

func TestReadNullContentAndLaterMessagesUnread(t *testing.T) {
	// An assistant turn that only calls tools has null or no content.
	body := chat("", msg("system", text("s", 600)), `{"role":"assistant","content":null,"tool_calls":[{"id":"c1"}]}`, `{"role":"tool","tool_call_id":"c1","content":"42"}`)
	if got, _, ok := read(t, body, 0); !ok || len(got) != 2 {
		t.Errorf("%d blocks, ok %v; want 2, true", len(got), ok)
	}
	// Once the blocks are full, later messages are not read: their shape
	// is not checked (their syntax is).
	full := chat("", msg("user", text("a", MaxBlocks*DefaultBlockSize)), `{"content":"no role"}`)
	if got, _, ok := read(t, full, 0); !ok || len(got) != MaxBlocks {
		t.Errorf("%d blocks, ok %v; want %d, true", len(got), ok, MaxBlocks)
	}
}

func TestReadAgreesAcrossEscapings(t *testing.T) {
	// One prompt written three ways: by encoding/json, by an encoder that
	// does not escape HTML (openai-go's, for one), and escaped as Python's
	// json (ensure_ascii) and an escape-everything encoder would.
	noHTML := func(s string) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		return strings.TrimSuffix(b.String(), "\n")
	}
	for _, s := range []string{"é and ü", "😀 emoji", "<b>&amp;</b>", "a/b", "tab\tnew\nline \"q\" \\", "\x00\x1f\b\u2028"} {
		p := strings.Repeat(s+" ", 300/len(s)+1)
		want, _, ok := read(t, `{"prompt":`+jsonString(p)+`}`, 0)
		if !ok || len(want) == 0 {
			t.Fatalf("%q: no key", s)
		}
		for _, enc := range []string{noHTML(p), asciiJSON(p)} {
			if got, _, _ := read(t, `{"prompt":`+enc+`}`, 0); !slices.Equal(got, want) {
				t.Errorf("%q: %x written as %.40s, %x as encoding/json writes it", s, got, enc, want)
			}
		}
	}
	// Lone surrogates decode to U+FFFD, as in encoding/json.
	a, _, _ := read(t, `{"prompt":"`+strings.Repeat(`\ud800x`, 100)+`"}`, 0)
	b, _, _ := read(t, `{"prompt":"`+strings.Repeat("\uFFFDx", 100)+`"}`, 0)
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Errorf("lone surrogates: %x, want %x", a, b)
	}
}

// asciiJSON writes s as a JSON string with every non-ASCII rune, '/', '<',
// '>' and '&' as a \u escape (surrogate pairs beyond the BMP).
func asciiJSON(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '/':
			b.WriteString(`\/`)
		case r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		case r < 0x20 || r > 0x7e || r == '<' || r == '>' || r == '&':
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestReadDoesNotAllocate(t *testing.T) {
	body := []byte(chat(`"user":"u"`, msg("system", text("s", 8000)), `{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x"}}]}`))
	var out [MaxBlocks]uint64
	allocs := testing.AllocsPerRun(100, func() {
		if n, _, ok := Read(body, 0, out[:]); !ok || n == 0 {
			t.Fatal("no key")
		}
	})
	if allocs != 0 {
		t.Errorf("Read allocates %v times, want 0", allocs)
	}
}

// reference is Read written with encoding/json, the oracle for the fuzz
// test: it decodes the body, escapes the text canonically and hashes the
// stream with one write.
func reference(body []byte, bs int, max int) (blocks []uint64, session string, ok bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || top == nil {
		return nil, "", false
	}
	msgs, hasM := top["messages"]
	prompt, hasP := top["prompt"]
	if hasM == hasP {
		return nil, "", false
	}
	str := func(raw json.RawMessage) (string, bool) {
		var s string
		err := json.Unmarshal(raw, &s)
		return canonicalForm(s), err == nil && len(raw) > 0 && raw[0] == '"'
	}
	rawStr := func(raw json.RawMessage) string {
		if len(raw) > 0 && raw[0] == '"' {
			return string(raw[1 : len(raw)-1])
		}
		return ""
	}
	var stream []byte
	limit := max * bs
	if hasP {
		p, ok := str(prompt)
		if !ok {
			return nil, "", false
		}
		stream = []byte(p)
	} else {
		var list []json.RawMessage
		if msgs[0] != '[' || json.Unmarshal(msgs, &list) != nil {
			return nil, "", false
		}
		for _, m := range list {
			if len(stream) >= limit {
				break
			}
			var fields map[string]json.RawMessage
			if m[0] != '{' || json.Unmarshal(m, &fields) != nil {
				return nil, "", false
			}
			role, ok := str(fields["role"])
			if !ok {
				return nil, "", false
			}
			stream = append(append(stream, role...), endRole)
			if c, has := fields["content"]; has {
				switch c[0] {
				case '"':
					s, _ := str(c)
					stream = append(stream, s...)
				case '[':
					var parts []json.RawMessage
					json.Unmarshal(c, &parts)
					for i, p := range parts {
						if i > 0 {
							stream = append(stream, betweenParts)
						}
						var pf map[string]json.RawMessage
						if p[0] != '{' || json.Unmarshal(p, &pf) != nil {
							return nil, "", false
						}
						var typ string
						if t := pf["type"]; len(t) == 0 || t[0] != '"' || json.Unmarshal(t, &typ) != nil {
							return nil, "", false
						}
						if typ != "text" {
							stream = append(stream, p...)
							continue
						}
						txt, ok := str(pf["text"])
						if !ok {
							return nil, "", false
						}
						stream = append(stream, txt...)
					}
				case 'n':
				default:
					return nil, "", false
				}
			}
			stream = append(stream, endMessage)
		}
	}
	c := newChain(0, bs, make([]uint64, max))
	c.write(stream)
	seed := Mix(Sum64(k2, rawStr(top["model"])), Sum64(k3, rawStr(top["cache_salt"])))
	for i := range c.n {
		c.out[i] = Mix(seed, c.out[i])
	}
	session = rawStr(top["prompt_cache_key"])
	if session == "" {
		session = rawStr(top["user"])
	}
	return c.out[:c.n], session, true
}

// canonicalForm is s JSON-escaped as feedString hashes it.
func canonicalForm(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 && shortEscape[r] != 0:
			b.WriteByte('\\')
			b.WriteByte(shortEscape[r])
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func FuzzRead(f *testing.F) {
	f.Add([]byte(chat(`"user":"u","cache_salt":"s"`, msg("system", text("s", 300)), `{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x"}}]}`)), 16, 8)
	f.Add([]byte(`{"prompt":"a\u00e9\ud83d\ude00\"b\\c\/d","model":"x","prompt_cache_key":"k"}`), 3, 4)
	f.Add([]byte(`{"messages":[{"content":null,"role":"assistant"},{"role":"tool","content":"1"}],"stream":true}`), 1, 64)
	f.Fuzz(func(t *testing.T, body []byte, bs, max int) {
		bs = 1 + abs(bs)%300
		max = abs(max) % (MaxBlocks + 1)
		out := make([]uint64, max)
		n, s, ok := Read(body, bs, out)
		// The scanner is lenient where a server rejects the body anyway
		// (numbers, control characters, invalid UTF-8); compare only
		// bodies encoding/json accepts.
		if !json.Valid(body) || !utf8.Valid(body) {
			return
		}
		want, ws, wok := reference(body, bs, max)
		if ok != wok || !slices.Equal(out[:n], want) || string(s.Get()) != ws {
			t.Fatalf("Read(%q, %d, [%d]) = %x %q %v; encoding/json gives %x %q %v", body, bs, max, out[:n], s.Get(), ok, want, ws, wok)
		}
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestChainMatchesNaiveBlockHash(t *testing.T) {
	naive := func(seed uint64, size int, data []byte) []uint64 {
		var out []uint64
		h := seed
		for len(data) >= size {
			blk := data[:size]
			data = data[size:]
			a := [3]uint64{h ^ k0, h ^ k1, h ^ k2}
			for ; len(blk) >= 48; blk = blk[48:] {
				for j, k := range []uint64{k1, k2, k3} {
					a[j] = mum(le64(blk[16*j:])^k, le64(blk[16*j+8:])^a[j])
				}
			}
			acc := a[0] ^ a[1] ^ a[2]
			for len(blk) > 0 {
				var lane [16]byte
				m := copy(lane[:], blk)
				blk = blk[m:]
				acc = mum(le64(lane[:8])^k1, le64(lane[8:])^acc)
			}
			h = mum(acc^k2, h^k3)
			out = append(out, h)
		}
		return out
	}
	data := []byte(text("c", 5000))
	for _, size := range []int{1, 15, 16, 17, 47, 48, 49, 64, 96, 256, 1000} {
		want := naive(7, size, data)
		want = want[:min(len(want), 40)]
		// Write in pieces of every length from 1 to 40, and byte by byte.
		for step := 1; step <= 40; step += 3 {
			c := newChain(7, size, make([]uint64, 40))
			for p := data; len(p) > 0; {
				k := min(step, len(p))
				c.write(p[:k])
				p = p[k:]
			}
			if !slices.Equal(c.out[:c.n], want) {
				t.Fatalf("size %d, writes of %d: %x, want %x", size, step, c.out[:c.n], want)
			}
		}
		c := newChain(7, size, make([]uint64, 40))
		for _, x := range data {
			c.writeByte(x)
		}
		if !slices.Equal(c.out[:c.n], want) {
			t.Fatalf("size %d, byte by byte: %x, want %x", size, c.out[:c.n], want)
		}
	}
}

func TestSum64(t *testing.T) {
	seen := map[uint64]string{}
	for i := range 2000 {
		s := strings.Repeat("x", i%40) + fmt.Sprint(i)
		h := Sum64(0, s)
		if h != Sum64(0, []byte(s)) {
			t.Fatalf("Sum64(%q) differs for string and []byte", s)
		}
		if prev, dup := seen[h]; dup {
			t.Fatalf("Sum64(%q) == Sum64(%q)", s, prev)
		}
		seen[h] = s
	}
	if Sum64(1, "a") == Sum64(2, "a") || Sum64(0, "") == Sum64(0, "\x00") {
		t.Error("seed or length ignored")
	}
	if Mix(1, 2) == Mix(2, 1) {
		t.Error("Mix is symmetric")
	}
}

// TestReadGolden pins the hashes: clients of one pool must compute the
// same ones, so a change here moves every key of every pool until all its
// clients run the same version. Change the values only on purpose.
func TestReadGolden(t *testing.T) {
	var out [MaxBlocks]uint64
	body := `{"model":"llama","messages":[{"role":"user","content":"` + strings.Repeat(`The cache of a \"replica\" holds blocks.\n`, 16) + `"}]}`
	n, _, ok := Read([]byte(body), 0, out[:])
	if !ok || n != 2 || out[0] != 0x3d6c3d6071bab114 || out[1] != 0x512be440562af702 {
		t.Errorf("Read = %d blocks %#x, ok %v; want 2 blocks [0x3d6c3d6071bab114 0x512be440562af702]", n, out[:n], ok)
	}
	if h := Sum64(0, "vllm-0"); h != 0xf5a1b2a23e586112 {
		t.Errorf(`Sum64(0, "vllm-0") = %#x, want 0xf5a1b2a23e586112`, h)
	}
}
