package main

import (
	"encoding/csv"
	"os"
	"strconv"
)

// writeCSV writes one line per finished call of both clients.
func writeCSV(path string, plain, sturdy []record) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"client", "start_ms", "latency_ms", "ok", "tier", "status"})
	for _, c := range []struct {
		name string
		recs []record
	}{{"plain", plain}, {"sturdy", sturdy}} {
		for _, r := range c.recs {
			if !r.Finished {
				continue
			}
			w.Write([]string{c.name,
				strconv.FormatFloat(r.Start.Seconds()*1000, 'f', 1, 64),
				strconv.FormatFloat(r.Latency.Seconds()*1000, 'f', 2, 64),
				strconv.FormatBool(r.OK), strconv.Itoa(r.Tier), strconv.Itoa(r.Status)})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
