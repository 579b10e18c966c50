package conformance

import (
	"fmt"
	"time"

	"github.com/kecis/kecis/saml"
)

// skewed sends the probe issued at now+offset, directly (the hub checks
// the clock too and would answer first).
func skewed(c *C, label string, offset time.Duration) (*Exchange, error) {
	req, err := c.ProbeRequest(label)
	if err != nil {
		return nil, err
	}
	req.IssueInstant = c.Now().Add(offset)
	x, err := c.Exchange(c.Context(), label, Direct, req, Seal{})
	if err != nil {
		return nil, err
	}
	c.Record(x)
	c.Note("IssueInstant %s, %s from the suite's clock", req.IssueInstant.Format(saml.TimeLayout), offset)
	return x, nil
}

func clockModule() *Module {
	within := 90 * time.Second
	beyond := 10 * time.Minute
	return &Module{
		Name:  "clock",
		Title: "Clock skew",
		Description: fmt.Sprintf("IssueInstant is accepted within the clock skew (KECIS: 3 minutes either way; the suite uses %s) and refused beyond it with a signed Requester / InvalidTime. "+
			"Sent directly to the participant, since the hub checks the clock first. (An expired message is the security module's.)", within),
		Applies: func(e *Env) (bool, string) {
			if _, err := e.probeService(); err != nil {
				return false, err.Error()
			}
			return true, ""
		},
		Conditions: []*Condition{
			{ID: "clock.past-within-skew", Title: "A request issued 90 seconds ago is accepted", Clauses: []string{"KECIS §7.2", "KECIS §5.1"},
				Run: func(c *C) error {
					x, err := skewed(c, "clock-past", -within)
					if err != nil {
						return err
					}
					return c.acceptedByPipeline(x)
				}},
			{ID: "clock.future-within-skew", Title: "A request issued 90 seconds ahead (a sender's fast clock) is accepted", Clauses: []string{"KECIS §7.2", "KECIS §5.1"},
				Run: func(c *C) error {
					x, err := skewed(c, "clock-future", within)
					if err != nil {
						return err
					}
					return c.acceptedByPipeline(x)
				}},
			{ID: "clock.future-beyond-skew", Title: "A request issued 10 minutes ahead is refused with a signed Requester / InvalidTime", Clauses: []string{"KECIS §7.2", "KECIS §5.3.2"},
				Run: func(c *C) error {
					x, err := skewed(c, "clock-far-future", beyond)
					if err != nil {
						return err
					}
					return expectStatus(c, x, saml.StatusRequester, saml.CodeInvalidTime)
				}},
		},
	}
}
