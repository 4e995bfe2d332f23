// Package sturdytest holds test helpers for users of sturdy: a fake
// OpenAI-compatible inference server that can be made slow, overloaded,
// rate-limited, flaky or down on purpose, to test a client wired with
// httpmw (or anything else) against real faults on loopback.
//
// It re-exports the module's internal fake server; see the Config fields
// for the faults, Server.Stats for what the server saw (requests by status
// and by model) and Server.SeenCredentials to assert that a key reached
// only the server it was meant for.
package sturdytest
