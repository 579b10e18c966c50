package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/kecis/kecis/ecml"
)

// Issuer is the issuer's side of a load test: it issues the card the run
// pays with and shows that card's ledger.
type Issuer interface {
	// IssueCard issues a credit card of limit (minor units of KRW); key
	// is the Idempotency-Key of the request.
	IssueCard(ctx context.Context, limit int64, key string) (*Card, error)
	// Ledger lists every approval the issuer holds on the card.
	Ledger(ctx context.Context, cardID string) ([]LedgerEntry, error)
}

// LedgerEntry is an approval in the issuer's ledger.
type LedgerEntry struct {
	Number string `json:"approval_number"`
	// Status as the issuer says it: approved, cancelled, settled,
	// partially_refunded, refunded.
	Status   string `json:"status"`
	OrderID  string `json:"order_id"` // the acquirer's order (the PG's transaction ID), not the shop's
	Amount   int64  `json:"amount"`
	Refunded int64  `json:"refunded_amount"`
}

// ledgerCancelled is the status of a reversed approval.
const ledgerCancelled = "cancelled"

// maxLedger bounds the entries read of one card's ledger.
const maxLedger = 2 * MaxRequests

// IssuerAPI is the demo issuer's native API (examples/issuer's Handler):
// POST /api/v1/cards issues a card, GET /api/v1/cards/{id}/approvals
// lists its ledger a page at a time.
type IssuerAPI struct {
	URL      string // base URL, the demo's addresses.issuer_api
	AdminKey string // Bearer credential of its admin routes; "" when it has none
	HTTP     *http.Client
}

// IssueCard implements Issuer. The card's holder is the load test; its
// number comes back once, and only the answer holds it.
func (a *IssuerAPI) IssueCard(ctx context.Context, limit int64, key string) (*Card, error) {
	body, _ := json.Marshal(map[string]any{"type": "credit", "holder_name": "KECIS load test", "holder_phone": "010-0000-0000",
		"birth_date": "000101", "password": "0000", "limit": limit, "currency": "KRW"})
	var out struct {
		Card struct {
			ID       string `json:"id"`
			ExpMonth int    `json:"exp_month"`
			ExpYear  int    `json:"exp_year"`
		} `json:"card"`
		Number string `json:"number"`
	}
	if err := a.do(ctx, http.MethodPost, "/api/v1/cards", key, body, http.StatusCreated, &out); err != nil {
		return nil, fmt.Errorf("issue the load test's card at the issuer: %w", err)
	}
	if out.Card.ID == "" || !ecml.LuhnValid(out.Number) {
		return nil, fmt.Errorf("issue the load test's card at the issuer: the answer has no card ID or number")
	}
	return &Card{ID: out.Card.ID, Number: ecml.PAN(out.Number), ExpMonth: out.Card.ExpMonth, ExpYear: out.Card.ExpYear}, nil
}

// Ledger implements Issuer.
func (a *IssuerAPI) Ledger(ctx context.Context, cardID string) ([]LedgerEntry, error) {
	var all []LedgerEntry
	after := ""
	for {
		var page struct {
			Approvals []LedgerEntry `json:"approvals"`
			Next      string        `json:"next"`
		}
		path := "/api/v1/cards/" + url.PathEscape(cardID) + "/approvals?after=" + url.QueryEscape(after)
		if err := a.do(ctx, http.MethodGet, path, "", nil, http.StatusOK, &page); err != nil {
			return nil, fmt.Errorf("read the card's ledger at the issuer: %w", err)
		}
		all = append(all, page.Approvals...)
		if page.Next == "" || page.Next <= after {
			return all, nil
		}
		if len(all) > maxLedger {
			return nil, fmt.Errorf("read the card's ledger at the issuer: more than %d approvals", maxLedger)
		}
		after = page.Next
	}
}

func (a *IssuerAPI) do(ctx context.Context, method, path, key string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if a.AdminKey != "" {
		req.Header.Set("Authorization", "Bearer "+a.AdminKey)
	}
	res, err := a.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &e)
		return fmt.Errorf("%s %s: HTTP %d %s %s", method, strings.SplitN(path, "?", 2)[0], res.StatusCode, e.Code, e.Message)
	}
	return json.Unmarshal(b, out)
}
