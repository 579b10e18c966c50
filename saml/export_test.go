package saml

import (
	"testing"
	"time"
)

// CorpusWorld hands the external tests of this directory (package
// saml_test: schema_diff_test.go) the federation the corpora under
// testdata/ were made in — the test keys, the fixed clock and the
// receivers TestAttackCorpus and TestGoldenEnvelopes run them through.
type CorpusWorld struct{ w *world }

// CorpusIssuerID is the responder the corpora's requests are addressed to.
const CorpusIssuerID = issuerID

func NewCorpusWorld(t testing.TB) CorpusWorld { return CorpusWorld{w: newWorld(t)} }

// IssuerReceiver is the card issuer's endpoint (requests).
func (c CorpusWorld) IssuerReceiver() *Receiver { return c.w.issuerReceiver() }

// MerchantReceiver is the merchant's endpoint for responses.
func (c CorpusWorld) MerchantReceiver(p PendingRequests) *Receiver { return c.w.merchantReceiver(p) }

// Keys is the federation's signing keys (merchant and issuer, RSA and EC).
func (c CorpusWorld) Keys() KeyResolver { return c.w.keys() }

// Now is the corpora's instant (testutil.FixedNow).
func (c CorpusWorld) Now() time.Time { return c.w.clock.Now() }
