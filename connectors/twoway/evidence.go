package twoway

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// EvidenceRoot is the local name of the evidence record,
// kecis:TransferAgreement in the KECIS namespace (saml.NSKECIS):
//
//	<kecis:TransferAgreement ID Version IssueInstant>
//	  <saml:Issuer/> <ds:Signature/>
//	  <kecis:Transfer Reference Purpose Amount Currency State/>
//	  <kecis:Terms Principal Currency RepaymentDate InterestRate>words</kecis:Terms>
//	  <kecis:Remitter BankCode Account Name ConfirmedAt/>
//	  <kecis:Payee BankCode Account Holder NameCheck Phone/>
//	  <kecis:PayeeConfirmation From ReceivedAt ReplyID Result/>
//	  <kecis:Execution DebitRef CreditRef/>
//	  <kecis:Log> <kecis:Event Seq Kind At> <kecis:Detail Name>value</kecis:Detail>* </kecis:Event>* </kecis:Log>
//	</kecis:TransferAgreement>
//
// Account numbers appear masked only (****-1234); texts with the code
// masked. xmlsec1 verifies it with
//
//	xmlsec1 --verify --pubkey-cert-pem bank.pem --id-attr:ID urn:kecis:protocol:1.0:TransferAgreement record.xml
const EvidenceRoot = "TransferAgreement"

// ErrNoAgreement: the request has no payee confirmation to export.
var ErrNoAgreement = errors.New("twoway: the payee has not confirmed this request")

// Evidence exports the signed record of a request the payee confirmed
// (KECIS §15.5; the electronic contract of a mutual-agreement transfer): the
// terms, the amount, the name check, the remitter's confirmation and its
// time, the payee's reply with its sender number and time, the
// verification, the execution and the whole evidence log, signed by the
// bank with the enveloped signature of KECIS §4. customer "" exports any
// request (the bank's staff); otherwise only the customer's own.
func (e *Engine) Evidence(ctx context.Context, customer, id string) ([]byte, error) {
	el, err := e.EvidenceElement(ctx, customer, id)
	if err != nil {
		return nil, err
	}
	return e.cfg.Signer.SignToBytes(el)
}

// EvidenceElement builds the unsigned record Evidence signs.
func (e *Engine) EvidenceElement(ctx context.Context, customer, id string) (*etree.Element, error) {
	r, err := e.Lookup(ctx, customer, id)
	if err != nil {
		return nil, err
	}
	if r.RepliedAt.IsZero() || r.State == Refused {
		return nil, ErrNoAgreement
	}
	events, err := e.cfg.Store.Events(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	return evidenceElement(e.cfg.EntityID, r, events, e.now())
}

func evidenceElement(issuer string, r *Request, events []Event, now time.Time) (*etree.Element, error) {
	amount, err := ecml.FormatAmount(r.Amount)
	if err != nil {
		return nil, err
	}
	at := func(t time.Time) string { return t.UTC().Format(saml.TimeLayout) }
	root := etree.NewElement("kecis:" + EvidenceRoot)
	root.CreateAttr("xmlns:kecis", saml.NSKECIS)
	root.CreateAttr("xmlns:saml", saml.NSSAML)
	root.CreateAttr("ID", "_"+r.ID)
	root.CreateAttr("Version", saml.SAMLVersion)
	root.CreateAttr("IssueInstant", at(now))
	root.CreateElement("saml:Issuer").SetText(issuer)

	t := root.CreateElement("kecis:Transfer")
	t.CreateAttr("Reference", r.ID)
	t.CreateAttr("Purpose", r.Purpose)
	t.CreateAttr("Amount", amount)
	t.CreateAttr("Currency", r.Amount.Currency)
	t.CreateAttr("State", string(r.State))
	if r.Terms != nil {
		terms := root.CreateElement("kecis:Terms")
		for _, kv := range [][2]string{{"Principal", r.Terms.Principal}, {"Currency", r.Terms.Currency},
			{"RepaymentDate", r.Terms.RepaymentDate}, {"InterestRate", r.Terms.InterestRate}} {
			terms.CreateAttr(kv[0], kv[1])
		}
		terms.SetText(r.Terms.Text)
	}
	rem := root.CreateElement("kecis:Remitter")
	rem.CreateAttr("BankCode", r.RemitterBank)
	rem.CreateAttr("Account", MaskAccount(r.RemitterAccount))
	rem.CreateAttr("Name", r.RemitterName)
	rem.CreateAttr("ConfirmedAt", at(r.ConfirmedAt))
	pay := root.CreateElement("kecis:Payee")
	pay.CreateAttr("BankCode", r.PayeeBank)
	pay.CreateAttr("Account", MaskAccount(r.PayeeAccount))
	pay.CreateAttr("Holder", r.HolderName)
	pay.CreateAttr("NameCheck", string(r.NameCheck))
	pay.CreateAttr("Phone", r.PayeePhone)
	c := root.CreateElement("kecis:PayeeConfirmation")
	c.CreateAttr("From", r.PayeePhone) // a reply is accepted only from the payee's phone
	c.CreateAttr("ReceivedAt", at(r.RepliedAt))
	if r.ReplyID != "" {
		c.CreateAttr("ReplyID", r.ReplyID)
	}
	c.CreateAttr("Result", "code-verified")
	x := root.CreateElement("kecis:Execution")
	for _, kv := range [][2]string{{"DebitRef", r.DebitRef}, {"CreditRef", r.CreditRef}} {
		if kv[1] != "" {
			x.CreateAttr(kv[0], kv[1])
		}
	}
	log := root.CreateElement("kecis:Log")
	for _, ev := range events {
		el := log.CreateElement("kecis:Event")
		el.CreateAttr("Seq", strconv.Itoa(ev.Seq))
		el.CreateAttr("Kind", ev.Kind)
		el.CreateAttr("At", at(ev.At))
		for _, k := range slices.Sorted(maps.Keys(ev.Detail)) {
			d := el.CreateElement("kecis:Detail")
			d.CreateAttr("Name", k)
			d.SetText(ev.Detail[k])
		}
	}
	return root, nil
}
