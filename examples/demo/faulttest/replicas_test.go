package faulttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/demo"
	"github.com/kecis/kecis/saml"
)

// TestReplicas: three `kecis serve` replicas on one PostgreSQL database,
// behind client-side round robin, agree while approvals flow through all
// three: a signed message one replica took is a replay at the others; one
// Idempotency-Key sent to two replicas at the same moment has one outcome,
// approved once; an operator's decision at one replica (suspending a
// merchant, reinstating it at another) reaches the other replicas' facade
// and metadata within the directory's reload interval. The issuer's ledger
// then holds every approval a merchant was told of, once.
func TestReplicas(t *testing.T) {
	dsn, _ := newDatabase(t)
	f := startFed(t, fedOptions{postgres: dsn})
	// c runs on the demo hub's own hub.yaml, as docs/demo.md says.
	a, b, c := f.addReplica("a"), f.addReplica("b"), f.addDemoReplica("c")
	for _, r := range []*replica{a, b, c} {
		t.Logf("replica %s ready in %v", r.name, r.waitReadyz(t, http.StatusOK, 20*time.Second).Round(time.Millisecond))
	}
	ctx := bounded(t)
	shop, shop2 := f.d.Merchants[0], f.d.Merchants[1]

	// The load: the first shop's approvals, round robin over the three.
	dr := &driver{f: f, targets: func() []string { return urls(a, b, c) }, retryFor: 20 * time.Second}
	rqs := f.requests("load", 90, 1000, shop)
	loaded := make(chan []outcome, 1)
	start := time.Now()
	go func() { loaded <- dr.run(ctx, rqs, 4) }()

	// Replay: the message replica a took, sent as is to b and c.
	sc, capt, mTLS := f.soapClient(shop, a.url)
	pan := f.d.Cards[0]
	o, err := sc.Approve(ctx, demo.PGID, &card.ApproveRequest{OrderID: "replay-1", Amount: ecml.Money{Minor: 2000, Currency: "KRW"},
		Card: card.Card{Number: pan.PAN, ExpMonth: fmt.Sprintf("%02d", pan.ExpMonth), ExpYear: fmt.Sprint(pan.ExpYear)}, IdempotencyKey: "replay-1"})
	if err != nil || !o.OK() {
		t.Fatalf("approve through replica a: %v %+v", err, o)
	}
	replayed := outcome{request: request{key: "replay-1", merchant: shop, amount: 2000},
		last: answer{resp: respWithCode(o.Approval.ApprovalNumber)}}
	body, hdr := capt.last()
	for _, r := range []*replica{b, c} {
		status, ans := f.postSOAP(r.url, mTLS, body, hdr)
		if !bytes.Contains(ans, []byte(saml.CodeReplay)) {
			t.Fatalf("replica a's message at replica %s: HTTP %d, want %s\n%.600s", r.name, status, saml.CodeReplay, ans)
		}
	}

	// Idempotency: one key at a and b at the same moment.
	// On a card the issuer decides after a second, so that each pair
	// overlaps: the second replica finds the key in flight.
	slow := f.issuerDelay(time.Second)
	var twins []outcome
	inFlight := 0
	for i := range 8 {
		rq := request{key: fmt.Sprintf("twin-%d", i), merchant: shop, amount: 3000 + int64(i), card: slow}
		var pair [2]outcome
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for j, r := range []*replica{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				one := &driver{f: f, targets: func() []string { return []string{r.url} }, retryFor: 15 * time.Second}
				pair[j] = one.do(ctx, rq)
			}()
		}
		close(gate)
		wg.Wait()
		x, y := pair[0].last.approvalCode(), pair[1].last.approvalCode()
		if x == "" || x != y {
			t.Fatalf("key %s at a and b at once: %v and %v, want one approval", rq.key, pair[0].last, pair[1].last)
		}
		for _, o := range pair {
			for k, n := range o.seen {
				if strings.HasPrefix(k, "409 ") {
					inFlight += n
				}
			}
		}
		twins = append(twins, pair[0])
	}
	if inFlight == 0 {
		t.Error("no pair overlapped: the second replica never found a key in flight")
	}
	t.Logf("8 keys sent to two replicas at once: one approval each; %d answers in flight (409) on the way", inFlight)

	// The registry: suspended at a, refused at b and c; reinstated at b,
	// admitted at a and c; each replica's metadata follows.
	admitted := func(r *replica) bool { st := f.routeStatus(r, shop2); return st != 0 && st != http.StatusUnauthorized }
	if !admitted(a) {
		t.Fatal("POST /v1/routes as the second shop: 401 before any suspension")
	}
	f.decide(a, "suspend", shop2.EntityID)
	suspended := time.Now()
	for _, r := range []*replica{b, c} {
		took := waitFor(t, "replica "+r.name+" refuses the suspended shop", 15*time.Second, func() bool {
			return f.routeStatus(r, shop2) == http.StatusUnauthorized
		})
		waitFor(t, "replica "+r.name+"'s metadata drops the suspended shop", 15*time.Second, func() bool {
			return !strings.Contains(f.metadata(r), `entityID="`+shop2.EntityID+`"`)
		})
		t.Logf("replica %s: the suspension seen after %v (facade), metadata by %v", r.name, took.Round(time.Millisecond), time.Since(suspended).Round(time.Millisecond))
	}
	f.decide(b, "reinstate", shop2.EntityID)
	reinstated := time.Now()
	for _, r := range []*replica{a, c} {
		waitFor(t, "replica "+r.name+" admits the reinstated shop", 15*time.Second, func() bool {
			return admitted(r)
		})
		waitFor(t, "replica "+r.name+"'s metadata lists the reinstated shop", 15*time.Second, func() bool {
			return strings.Contains(f.metadata(r), `entityID="`+shop2.EntityID+`"`)
		})
		t.Logf("replica %s: the reinstatement seen by %v", r.name, time.Since(reinstated).Round(time.Millisecond))
	}
	// … and it pays again, through whichever replica.
	dr2 := &driver{f: f, targets: func() []string { return urls(a, b, c) }, retryFor: 15 * time.Second}
	after := dr2.run(ctx, f.requests("back", 6, 4000, shop2), 3)

	outs := <-loaded
	summarize(t, "the first shop's load, round robin over 3 replicas", outs, time.Since(start))
	all := append(append(append(outs, twins...), after...), replayed)
	f.reconcile(all, 1000, 5000)
	f.checkHubRecords(append(append(outs, twins...), after...))
}

// respWithCode is an approved answer with the approval number code (for
// reconciling an approval made over SOAP).
func respWithCode(code string) callapi.CallResponse {
	return callapi.CallResponse{Outcome: "answered", Status: "Success", Fields: map[string]string{"Ecom_Transaction_ApprovalCode": code}}
}

// decide runs an operator action at replica r.
func (f *fed) decide(r *replica, action, entityID string) {
	t := f.t
	t.Helper()
	body, _ := json.Marshal(map[string]string{"entity_id": entityID, "reason": "faulttest"})
	resp, err := f.httpClient(f.operator).Post(r.url+"/kecis/admin/participants/"+action, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s at replica %s: %d %s", action, entityID, r.name, resp.StatusCode, b)
	}
}

// routeStatus is the status of POST /v1/routes as m at r: 401 once r
// knows m is no active merchant, another while it is (0: no answer). It
// changes nothing.
func (f *fed) routeStatus(r *replica, m *demo.Merchant) int {
	body, _ := json.Marshal(map[string]string{"service": "approve", "amount": "1000", "currency": "KRW", "card_bin": f.d.Cards[0].PAN.Reveal()[:6]})
	req, _ := http.NewRequest(http.MethodPost, r.url+"/v1/routes", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+m.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metadata is the aggregate replica r serves.
func (f *fed) metadata(r *replica) string {
	resp, err := f.client.Get(r.url + "/kecis/metadata")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
