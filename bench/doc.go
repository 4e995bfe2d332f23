// Package bench holds sturdy's benchmarks against its peers (failsafe-go,
// plain round-robin, grpc-go's own policies). It is a module of its own so
// that the peers never enter the library's go.mod.
package bench
