package sturdytest_test

import (
	"fmt"
	"net/http"

	"github.com/sturdyai/sturdy/sturdytest"
)

func ExampleStartLLM() {
	srv, err := sturdytest.StartLLM(sturdytest.Config{Name: "down", Down: sturdytest.Down503})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	resp, err := http.Get(srv.URL() + "/health")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	fmt.Println(resp.StatusCode)
	// Output: 503
}
