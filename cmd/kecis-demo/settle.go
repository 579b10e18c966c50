package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kecis/kecis/examples/demo"
)

// runSettle ends the issuer's business day in the demo running in dir
// (demo.Demo.Settle): it POSTs demo.json's settle_url and prints what was
// settled.
func runSettle(w io.Writer, dir string) error {
	m, err := demo.ReadManifest(dir)
	if err != nil {
		return fmt.Errorf("no demo runs in %s (its demo.json: %w)", dir, err)
	}
	if m.SettleURL == "" {
		return fmt.Errorf("%s/%s has no settle_url: the demo running there is older than --settle", dir, demo.ManifestFile)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Post(m.SettleURL, "application/json", nil)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("settle: HTTP %d: %s", res.StatusCode, b)
	}
	var s demo.Settlement
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	fmt.Fprintf(w, "The issuer's business day ended: its clock moved %s to %s; %d approval(s) settled",
		s.Skipped, s.IssuerTime.Format("2006-01-02 15:04 MST"), s.Settled)
	if s.BatchID != "" {
		fmt.Fprintf(w, " in batch %s (%v)", s.BatchID, s.Totals)
	}
	fmt.Fprintln(w, ". They can be refunded now, no longer cancelled.")
	return nil
}
