package httpmw

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFindModelReadsTheTopLevelModel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"model":"gpt-4o","messages":[]}`, "gpt-4o"},
		{`{"messages":[{"content":"say \"model\": \"x\""}], "model" : "m-1"}`, "m-1"},
		{`{"id":"x","model":` + "\n" + `"llama"}`, "llama"},
		{`{"model":42}`, ""},
		{`{"model":"esc\"aped"}`, ""},
		{`{"model":"` + strings.Repeat("a", 300) + `"}`, ""},
		{`{"model":"cut`, ""},
		{`{}`, ""},
		{`{"tools":[{"model":"nested"}],"model":"top"}`, "top"},
		{`{"messages":[{"role":"model"}],"model":"m-2"}`, "m-2"},
		{`{"mod\u0065l":"escaped-key"}`, "escaped-key"},
	} {
		assert.Equal(t, tc.want, findModel([]byte(tc.in)), tc.in)
	}
}

func TestGenAIOperationByPath(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/chat/completions": "chat", "/openai/deployments/d/chat/completions": "chat",
		"/v1/completions": "text_completion", "/v1/embeddings": "embeddings", "/v1/models": "", "/health": "",
	} {
		assert.Equal(t, want, genAIOperation(path), path)
	}
}

func TestReadIntoReadsAllWhateverTheBuffer(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100)
	for _, c := range []int{0, 10, 999, 1000, 1001, 5000} {
		got, err := readInto(make([]byte, 0, c), iotest.HalfReader(bytes.NewReader(body)), 1<<20)
		require.NoError(t, err)
		assert.Equal(t, body, got, "capacity %d", c)
	}
	got, err := readInto(nil, bytes.NewReader(body), 100)
	require.NoError(t, err)
	assert.Len(t, got, 100, "at most limit")
	_, err = readInto(nil, iotest.ErrReader(io.ErrUnexpectedEOF), 100)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}
