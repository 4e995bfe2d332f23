// Command observability drives calls through sturdy's httpmw.Transport
// against local fake model servers that fail on purpose, and shows what an
// operator sees: OpenTelemetry traces (a few calls, printed by the stdout
// exporter) and the sturdy.* metrics on a Prometheus /metrics endpoint
// (the OpenTelemetry Prometheus exporter), for the Grafana dashboard
// (dashboard.json) and the alerting rules (alerts.yml) beside this file.
//
//	go run ./examples/observability                 # about 20 s of traffic
//	go run ./examples/observability -linger 10m     # then keep /metrics up
//	go run ./examples/observability -h              # flags
//
// Everything listens on 127.0.0.1 and stops by itself.
package main

import "github.com/sturdyai/sturdy/examples/internal/cli"

func main() { cli.Main("observability", run) }
