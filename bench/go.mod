module github.com/sturdyai/sturdy/bench

go 1.26.0

require github.com/sturdyai/sturdy v0.0.0

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0 // indirect
	github.com/failsafe-go/failsafe-go v0.9.8 // indirect
)

replace github.com/sturdyai/sturdy => ../
