package escrow

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// RecordRoot is the local name of an event's record, kecis:EscrowRecord in
// the KECIS namespace (saml.NSKECIS), signed by the bank with the
// enveloped signature of KECIS §4 (saml.Signer, as the 2-WAY evidence):
//
//	<kecis:EscrowRecord ID Version IssueInstant>
//	  <saml:Issuer/> <ds:Signature/>
//	  <kecis:Escrow Reference Merchant Order Kind Amount Currency State [Carrier Tracking ConfirmBy Reason Auto]/>
//	  <kecis:Change Kind From To At Actor RowVersion> <kecis:Detail Name>value</kecis:Detail>* </kecis:Change>
//	  <kecis:Settlement BankCode Account/>
//	  <kecis:Buyer Account/>                        (once paid)
//	</kecis:EscrowRecord>
//
// Kind is "escrow" or "collect"; account numbers appear masked only
// (****-1234). The ID is "_" + the reference + "-" + the row's version, so
// every record of an escrow has its own. xmlsec1 verifies it with
//
//	xmlsec1 --verify --pubkey-cert-pem bank.pem --id-attr:ID urn:kecis:protocol:1.0:EscrowRecord record.xml
const RecordRoot = "EscrowRecord"

// event builds the event of a change of x (already carrying its new
// state and fields) from state from, with its signed record.
func (e *Engine) event(x *Escrow, from State, kind, actor string, now time.Time, detail map[string]string) (*Event, error) {
	d := map[string]string{}
	for k, v := range detail {
		if v != "" {
			d[k] = v
		}
	}
	ev := &Event{Kind: kind, From: from, To: x.State, At: now, Actor: actor, Detail: d}
	el, err := recordElement(e.cfg.Issuer, x, ev, x.Version+1)
	if err != nil {
		return nil, err
	}
	if ev.Record, err = e.cfg.Signer.SignToBytes(el); err != nil {
		return nil, err
	}
	return ev, nil
}

// Kind is "escrow" or "collect".
func (x *Escrow) Kind() string {
	if x.Hold {
		return "escrow"
	}
	return "collect"
}

// ECML is the escrow's kx:Escrow as answers carry it (nil for a collect).
func (x *Escrow) ECML() *ecml.Escrow {
	if !x.Hold {
		return nil
	}
	k := &ecml.Escrow{State: string(x.State), Carrier: x.Carrier, Tracking: x.Tracking, Reason: x.Reason}
	if !x.ConfirmBy.IsZero() {
		k.ConfirmBy = x.ConfirmBy.UTC().Format(time.RFC3339)
	}
	if x.Auto {
		k.Auto = "true"
	}
	return k
}

func recordElement(issuer string, x *Escrow, ev *Event, version int) (*etree.Element, error) {
	amount, err := ecml.FormatAmount(x.Amount)
	if err != nil {
		return nil, err
	}
	at := func(t time.Time) string { return t.UTC().Format(saml.TimeLayout) }
	root := etree.NewElement("kecis:" + RecordRoot)
	root.CreateAttr("xmlns:kecis", saml.NSKECIS)
	root.CreateAttr("xmlns:saml", saml.NSSAML)
	root.CreateAttr("ID", "_"+x.Reference+"-"+strconv.Itoa(version))
	root.CreateAttr("Version", saml.SAMLVersion)
	root.CreateAttr("IssueInstant", at(ev.At))
	root.CreateElement("saml:Issuer").SetText(issuer)

	es := root.CreateElement("kecis:Escrow")
	for _, kv := range [][2]string{{"Reference", x.Reference}, {"Merchant", x.Merchant}, {"Order", x.Order}, {"Kind", x.Kind()},
		{"Amount", amount}, {"Currency", x.Amount.Currency}, {"State", string(x.State)}} {
		es.CreateAttr(kv[0], kv[1])
	}
	if k := x.ECML(); k != nil {
		for _, kv := range [][2]string{{"Carrier", k.Carrier}, {"Tracking", k.Tracking}, {"ConfirmBy", k.ConfirmBy},
			{"Reason", k.Reason}, {"Auto", k.Auto}} {
			if kv[1] != "" {
				es.CreateAttr(kv[0], kv[1])
			}
		}
	}
	c := root.CreateElement("kecis:Change")
	c.CreateAttr("Kind", ev.Kind)
	if ev.From != "" {
		c.CreateAttr("From", string(ev.From))
	}
	c.CreateAttr("To", string(ev.To))
	c.CreateAttr("At", at(ev.At))
	c.CreateAttr("Actor", ev.Actor)
	c.CreateAttr("RowVersion", strconv.Itoa(version))
	for _, k := range slices.Sorted(maps.Keys(ev.Detail)) {
		d := c.CreateElement("kecis:Detail")
		d.CreateAttr("Name", k)
		d.SetText(ev.Detail[k])
	}
	s := root.CreateElement("kecis:Settlement")
	s.CreateAttr("BankCode", x.SettlementBank)
	s.CreateAttr("Account", ecml.MaskAccount(x.SettlementAccount.Reveal()))
	if x.Buyer != "" && x.BuyerAccount != "" {
		root.CreateElement("kecis:Buyer").CreateAttr("Account", ecml.MaskAccount(x.BuyerAccount.Reveal()))
	}
	return root, nil
}
