package pg

import _ "embed"

// KECISMapping is the sidecar's mapping file for this PG (adapter.yaml):
// the only thing the PG needs to join a KECIS federation. It is data, not
// code: the PG itself imports nothing of KECIS.
//
//go:embed adapter.yaml
var KECISMapping []byte
