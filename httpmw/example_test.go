package httpmw_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/httpmw"
)

// A primary that is down, a replica that answers: every call succeeds,
// and the response says who served it.
func ExampleNewTransport() {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"path":%q,"key":%q}`, r.URL.Path, r.Header.Get("Authorization"))
	}))
	defer up.Close()

	tr, err := httpmw.NewTransport(nil,
		httpmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1}),
		httpmw.WithTier(degrade.Tier{Name: "primary"},
			httpmw.URL("down", down.URL, nil),
			httpmw.URL("up", up.URL+"/base", http.Header{"Authorization": {"Bearer up-key"}}),
		))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}

	resp, err := client.Post("http://llm/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get(httpmw.HeaderEndpoint))
	fmt.Println(string(body))
	// Output:
	// 200 up
	// {"path":"/base/v1/chat/completions","key":"Bearer up-key"}
}

// A fallback tier serves when the primary cannot, with the request's
// model rewritten to the tier's.
func ExampleWithTier_fallback() {
	limited := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer limited.Close()
	small := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	defer small.Close()

	tr, err := httpmw.NewTransport(nil,
		httpmw.WithTier(degrade.Tier{Name: "big", Model: "big-model"}, httpmw.URL("limited", limited.URL, nil)),
		httpmw.WithTier(degrade.Tier{Name: "small", Model: "small-model"}, httpmw.URL("small", small.URL, nil)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}
	for range 2 {
		resp, err := client.Post("http://llm/v1/chat/completions", "application/json",
			strings.NewReader(`{"model": "big-model", "messages": []}`))
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Header.Get(httpmw.HeaderTier), string(body))
	}
	fmt.Println("served by tier:", tr.Stats().Served)
	// Output:
	// small {"model": "small-model", "messages": []}
	// small {"model": "small-model", "messages": []}
	// served by tier: [0 2]
}

// When every attempt failed with an HTTP error, the last one is returned,
// marked so that the client does not retry it again.
func ExampleTransport_RoundTrip_failedEverywhere() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	tr, err := httpmw.NewTransport(nil,
		httpmw.WithBalancer(balancer.Config{Policy: balancer.RoundRobin, Seed: 1}),
		httpmw.WithTier(degrade.Tier{}, httpmw.URL("a", srv.URL, nil), httpmw.URL("b", srv.URL, nil)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	resp, err := (&http.Client{Transport: tr}).Get("http://llm/v1/models")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get(httpmw.HeaderShouldRetry), resp.Header.Get(httpmw.HeaderAttempts))
	// Output:
	// 502 false a:unavailable, b:unavailable
}

// Requests that share a long prompt prefix (here a document in the system
// prompt) go to the same replica, where its prompt cache holds the
// prefix; so do requests with the same session header.
func ExampleWithAffinity() {
	var replicas []httpmw.Endpoint
	for i := range 4 {
		name := fmt.Sprintf("vllm-%d", i)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"id":"x"}`)
		}))
		defer srv.Close()
		replicas = append(replicas, httpmw.URL(name, srv.URL, nil))
	}
	tr, err := httpmw.NewTransport(nil, httpmw.WithEndpoints(replicas...),
		httpmw.WithAffinity(balancer.Affinity{SessionHeader: "X-Session-Id"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}
	served := func(body string, session string) string {
		req, _ := http.NewRequest(http.MethodPost, "http://llm/v1/chat/completions", strings.NewReader(body))
		if session != "" {
			req.Header.Set("X-Session-Id", session)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err.Error()
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get(httpmw.HeaderEndpoint)
	}
	doc := strings.Repeat("The quarterly report says revenue grew in every region. ", 80) // 4.4 KiB
	ask := func(q string) string {
		return fmt.Sprintf(`{"model":"m","messages":[{"role":"system","content":%q},{"role":"user","content":%q}]}`, doc, q)
	}
	first := served(ask("Summarise it."), "")
	fmt.Println(served(ask("Which region grew most?"), "") == first)
	fmt.Println(served(ask("And least?"), "") == first)
	a := served(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "conversation-1")
	fmt.Println(served(`{"model":"m","messages":[{"role":"user","content":"hello again"}]}`, "conversation-1") == a)
	// Output:
	// true
	// true
	// true
}
