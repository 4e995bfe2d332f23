package main

import "github.com/sturdyai/sturdy/sturdytest"

// The fake model servers come from sturdytest; only this file names it.
type (
	fakeServer    = sturdytest.Server
	fakeConfig    = sturdytest.Config
	fakeLatency   = sturdytest.Latency
	fakeRateLimit = sturdytest.RateLimit
)

const (
	fakeUp        = sturdytest.Up
	fakeDown503   = sturdytest.Down503
	fakeDownReset = sturdytest.DownReset
)

var startFake = sturdytest.StartLLM
