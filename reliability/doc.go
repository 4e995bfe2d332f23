// Package reliability is sturdy's reliability and security suite: what
// happens to calls through httpmw and grpcmw when everything goes wrong.
//
// Its tests put Shopify's toxiproxy, run in-process on 127.0.0.1, between
// sturdy and fake inference servers (sturdytest's OpenAI-compatible server,
// grpc-go's interop TestService) and inject real network faults; they drive
// total outages, count goroutines and connections after thousands of calls,
// feed bad configurations and bad inputs, and check that no credential,
// prompt or body reaches another endpoint, a span, a metric, a log line or an
// error string. Each test logs its figures (go test -v); with
// -table=../RELIABILITY.md the suite rewrites the figures table of
// RELIABILITY.md:
//
//	cd reliability && go test -race -count=1 . -args -table=../RELIABILITY.md
//
// cmd/soak runs mixed faults at a steady rate for minutes and reports
// memory and goroutines; it is not part of go test.
//
// The suite is its own module so that toxiproxy never enters the library's
// go.mod.
package reliability
