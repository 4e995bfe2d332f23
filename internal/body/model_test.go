package body

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRewriteModelKeepsEveryOtherByte(t *testing.T) {
	q := QuoteModel("small")
	tests := []struct {
		name, in, want string
		found          bool
	}{
		{"simple", `{"model":"big","messages":[]}`, `{"model":"small","messages":[]}`, true},
		{"spacing and order kept", "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"model\"} ] ,\n  \"model\" :  \"big\" , \"n\":1.50E+2}",
			"{ \"messages\" : [ {\"role\":\"user\",\"content\":\"model\"} ] ,\n  \"model\" :  \"small\" , \"n\":1.50E+2}", true},
		{"nested model untouched", `{"tools":[{"model":"x"}],"meta":{"model":"y"},"model":"big"}`,
			`{"tools":[{"model":"x"}],"meta":{"model":"y"},"model":"small"}`, true},
		{"escaped key", `{"mod\u0065l":"big"}`, `{"mod\u0065l":"small"}`, true},
		{"duplicates all rewritten", `{"model":"a","x":1,"model":"b"}`, `{"model":"small","x":1,"model":"small"}`, true},
		{"non-string value", `{"model":null}`, `{"model":"small"}`, true},
		{"escaped quotes in other strings", `{"p":"say \"model\": \"x\"","model":"big"}`, `{"p":"say \"model\": \"x\"","model":"small"}`, true},
		{"no model", `{"messages":[]}`, `{"messages":[]}`, false},
		{"empty object", ` {} `, ` {} `, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, found, err := RewriteModel([]byte(tc.in), q)
			require.NoError(t, err)
			assert.Equal(t, tc.found, found)
			assert.Equal(t, tc.want, string(out))
		})
	}
}

func TestRewriteModelRejectsMalformedJSON(t *testing.T) {
	for _, in := range []string{``, `{`, `{"model":"a",}`, `[{"model":"a"}]`, `"model"`, `{"model":"a"} x`, "{\"model\":\"a\u0000\"}"} {
		_, _, err := RewriteModel([]byte(in), QuoteModel("b"))
		assert.ErrorIs(t, err, ErrMalformed, "%q", in)
	}
}

func TestQuoteModelEscapes(t *testing.T) {
	assert.Equal(t, `"a\"b\u003c"`, string(QuoteModel(`a"b<`)))
}

func TestDrainReadsAtMostLimitAndCloses(t *testing.T) {
	rc := &countingCloser{r: strings.NewReader(strings.Repeat("x", 100))}
	Drain(rc, 10)
	assert.Equal(t, 10, rc.n)
	assert.True(t, rc.closed)
	Drain(nil, 10)
}

type countingCloser struct {
	r      io.Reader
	n      int
	closed bool
}

func (c *countingCloser) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func (c *countingCloser) Close() error { c.closed = true; return nil }

func FuzzRewriteModel(f *testing.F) {
	for _, s := range []string{`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
		`{"a":{"model":1},"model":[1,2],"b":"\"model\""}`, `{"mod\u0065l":"x"}`, `{}`, `[]`, `{"model":"a",}`} {
		f.Add([]byte(s), "small-model")
	}
	f.Fuzz(func(t *testing.T, in []byte, model string) {
		q := QuoteModel(model)
		// Model reads any prefix without panicking and, for a body with
		// one "model" key and no escapes (a decoder takes the last of
		// several, however spelled), reads the value a decoder does.
		Model(in[:len(in)/2])
		if m, ok := Model(in); ok && bytes.Count(in, []byte("model")) == 1 && bytes.IndexByte(in, '\\') < 0 {
			var v struct {
				Model *string `json:"model"`
			}
			if json.Unmarshal(in, &v) == nil && v.Model != nil && *v.Model != m {
				t.Fatalf("Model(%q) = %q, want %q", in, m, *v.Model)
			}
		}
		out, found, err := RewriteModel(in, q)
		var obj map[string]json.RawMessage
		objErr := json.Unmarshal(in, &obj)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			if objErr == nil && obj != nil {
				t.Fatalf("rejected a valid object %q", in)
			}
			return
		}
		if objErr != nil || obj == nil {
			t.Fatalf("accepted %q, which is not a JSON object", in)
		}
		if !found {
			if !bytes.Equal(in, out) {
				t.Fatalf("changed a body without a model")
			}
			if _, ok := obj["model"]; ok {
				t.Fatalf("missed the model key of %q", in)
			}
			return
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("output %q is not valid JSON: %v", out, err)
		}
		var m, want string
		_ = json.Unmarshal(q, &want)
		if err := json.Unmarshal(got["model"], &m); err != nil || m != want {
			t.Fatalf("model is %s, want %q", got["model"], model)
		}
		if len(got) != len(obj) {
			t.Fatalf("keys changed: %d vs %d", len(got), len(obj))
		}
		for k, v := range obj {
			if k != "model" && !bytes.Equal(v, got[k]) {
				t.Fatalf("key %q changed: %s -> %s", k, v, got[k])
			}
		}
		// Byte-exact outside the values: each other key's raw value is
		// compared above; the text before the first key is kept too.
		if k := bytes.IndexByte(in, '"'); k < 0 || !bytes.Equal(in[:k], out[:k]) {
			t.Fatalf("leading bytes changed")
		}
	})
}
