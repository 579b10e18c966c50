package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/issuer"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/federation/facade"
)

// Test card outcomes (TestCard.Result, demo.json test_cards[].outcome):
// what a payment of the card's amount gives through the hub's facade.
const (
	// CardApproved: approved (status Success).
	CardApproved = "approved"
	// CardDeclined: the issuer has blocked the card: sub_status Declined.
	CardDeclined = "declined"
	// CardInsufficientFunds: a check card whose balance is below the
	// amount: sub_status InsufficientFunds.
	CardInsufficientFunds = "insufficient_funds"
	// CardLimitExceeded: a credit card whose limit is below the amount:
	// sub_status LimitExceeded.
	CardLimitExceeded = "limit_exceeded"
	// CardExpired: a card past its expiry. The hub refuses it before it
	// travels — its ECML validation finds the expiry past (KECIS §12.4):
	// problem invalid-fields, HTTP 400, the expiry named in the detail —
	// so no PG or issuer sees it (either would decline it Expired).
	CardExpired = "expired"
	// CardLostStolen: a card reported lost or stolen: sub_status Declined
	// (the networks' advice: tell the buyer no more than a decline).
	CardLostStolen = "lost_stolen"
	// CardIssuerTimeout: the issuer's host answers beyond the hub's relay
	// timeout: outcome pending (sub_status Pending) — never a decline —
	// and an inquire once the issuer has decided finds it approved.
	CardIssuerTimeout = "issuer_timeout"
)

// testCardExpiry is the expiry of the demo's valid cards: fixed, so that
// issuing them again on every run is the same request whatever the date
// (an issuer's default expiry moves with the month).
const testCardExpMonth, testCardExpYear = 12, 2031

// testCards are the demo's test cards, one per outcome; the first two are
// demo.json's cards[] (kept as they were), every one is in test_cards[].
// Each holder has a phone of its own at the telecom.
func testCards(relayTimeout time.Duration) []TestCard {
	valid := func(c TestCard) TestCard {
		c.ExpMonth, c.ExpYear = testCardExpMonth, testCardExpYear
		if c.Type == "" {
			c.Type = issuer.Credit
		}
		if c.Status == "" {
			c.Status = issuer.CardActive
		}
		return c
	}
	return []TestCard{
		valid(TestCard{Holder: "Hong Gildong", Phone: "010-1234-5678", Limit: 3_000_000, Password: "1234", BirthDate: "900101",
			Description: "a credit card with a 3,000,000 KRW limit: approves", Outcome: OutcomeApproved,
			Result: CardApproved, Amount: 15_000}),
		valid(TestCard{Holder: "Kim Minji", Phone: "010-2222-3333", Limit: 50_000, Password: "4321", BirthDate: "851231",
			Description: "a credit card with a 50,000 KRW limit: a payment above it is declined LimitExceeded", Outcome: OutcomeLimitExceeded,
			Result: CardLimitExceeded, SubStatus: "LimitExceeded", Amount: 60_000}),
		valid(TestCard{Holder: "Lee Seojun", Phone: "010-3333-4444", Limit: 1_000_000, Password: "5678", BirthDate: "920315",
			Description: "a credit card the issuer has blocked: declined", Status: issuer.CardBlocked,
			Result: CardDeclined, SubStatus: "Declined", Amount: 15_000}),
		valid(TestCard{Holder: "Park Jiwoo", Phone: "010-4444-5555", Type: issuer.Check, Limit: 10_000, Password: "2468", BirthDate: "010203",
			Description: "a check card with a 10,000 KRW balance: a payment above it is declined InsufficientFunds",
			Result:      CardInsufficientFunds, SubStatus: "InsufficientFunds", Amount: 15_000}),
		{Holder: "Choi Yuna", Phone: "010-5555-6666", Type: issuer.Credit, Status: issuer.CardActive, Limit: 1_000_000, Password: "1357",
			BirthDate: "880808", ExpMonth: 1, ExpYear: 2024, Description: "a credit card that expired in January 2024: the hub refuses it (problem invalid-fields, HTTP 400, naming the expiry)",
			Result: CardExpired, Problem: facade.ProblemInvalidFields.Type, Amount: 15_000},
		valid(TestCard{Holder: "Jung Hayun", Phone: "010-6666-7777", Limit: 1_000_000, Password: "9753", BirthDate: "950505",
			Description: "a credit card reported lost or stolen: declined", Status: issuer.CardLost,
			Result: CardLostStolen, SubStatus: "Declined", Amount: 15_000}),
		valid(TestCard{Holder: "Kang Doyun", Phone: "010-7777-8888", Limit: 1_000_000, Password: "8642", BirthDate: "870707",
			Description: fmt.Sprintf("a credit card the issuer's host decides on after %s, beyond the hub's relay timeout: Pending, then an inquire finds it approved", relayTimeout+3*time.Second),
			Delay:       relayTimeout + 3*time.Second, Result: CardIssuerTimeout, SubStatus: "Pending", Amount: 15_000}),
	}
}

// issueCards issues the demo's test cards (idempotently: the same cards on
// every run), sets each one's status and response delay at the issuer,
// and gives their holders phones at the telecom.
func (d *Demo) issueCards(ctx context.Context) error {
	for i, c := range testCards(d.cfg.RelayTimeout) {
		born, err := time.Parse("060102", c.BirthDate)
		if err != nil {
			return err
		}
		if born.Year() > time.Now().Year() {
			born = born.AddDate(-100, 0, 0)
		}
		if err := d.Telecom.AddSubscriber(ctx, telecom.Subscriber{Phone: c.Phone, HolderName: c.Holder, BirthDate: born}); err != nil && !alreadyThere(err) {
			return fmt.Errorf("telecom subscriber: %w", err)
		}
		// Every card has an authentication password and a TOTP seed for
		// the issuer's cardholder authentication (KECIS §15.7).
		c.AuthPassword = cardAuthPassword(c)
		req := issuer.IssueCardRequest{Type: c.Type, HolderName: c.Holder, HolderPhone: c.Phone,
			BirthDate: ecml.Secret(c.BirthDate), Password: ecml.Secret(c.Password), Limit: c.Limit,
			ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, AuthPassword: ecml.Secret(c.AuthPassword), EnrolTOTP: true,
			IdempotencyKey: fmt.Sprintf("demo-test-card-%d", i+1)}
		ic, err := d.Issuer.IssueCard(ctx, req)
		if issuer.CodeOf(err) == issuer.CodeIdempotencyConflict {
			// A directory whose cards were issued before they had
			// cardholder-authentication credentials: the same card with
			// them is issued once more, under a key of its own.
			req.IdempotencyKey += "-cardauth"
			ic, err = d.Issuer.IssueCard(ctx, req)
		}
		if err != nil {
			return fmt.Errorf("issuing a test card: %w", err)
		}
		if ic.TOTPEnrolment != nil {
			c.TOTPSeed, c.TOTPURI = ic.TOTPEnrolment.Seed.Reveal(), ic.TOTPEnrolment.URI.Reveal()
		}
		if ic.Status != c.Status {
			if _, err := d.Issuer.SetCardStatus(ctx, ic.ID, c.Status); err != nil {
				return fmt.Errorf("test card status: %w", err)
			}
		}
		if ic.ResponseDelay != c.Delay {
			if _, err := d.Issuer.SetCardResponseDelay(ctx, ic.ID, c.Delay); err != nil {
				return fmt.Errorf("test card delay: %w", err)
			}
		}
		c.PAN = ic.PAN
		if err := d.cardAuthCredentials(ctx, i+1, ic.ID, &c); err != nil {
			return err
		}
		d.Cards = append(d.Cards, c)
	}
	return nil
}

// cardAuthPassword is a test card's authentication password on the
// issuer's page (KECIS §15.7): its four-digit card password twice — digits
// only, as the page's on-screen keypad has no other keys.
func cardAuthPassword(c TestCard) string { return c.Password + c.Password }
