// Package loadtest is kecis loadtest: a bounded load generator that drives
// real card flows through a hub's JSON facade (KECIS §12.4) — approvals
// mixed with cancels, refunds after a settlement, and inquiries, from
// every merchant it is given, each change with an Idempotency-Key that a
// retry reuses (KECIS §7.1) — at a fixed offered rate (open loop: latency
// runs from the time a request was due, so a slow hub cannot hide its
// queue) or as fast as its workers go, for a number of requests or a
// duration, then stops.
//
// It then reconciles every acknowledged approval against the issuer's own
// ledger: it pays with a card it issued at the start through the issuer's
// native API, so that the card's ledger holds this run's approvals and
// nothing else, and checks each acknowledged approval is there once, a
// cancelled one reversed, a refund neither missing nor counted twice.
//
// It reaches loopback hosts only, and the hosts its caller names
// (Target.Check): a load generator must not be pointed at somebody's
// production hub by a typo.
//
// docs/loadtest.md is the guide.
package loadtest
