package demo

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"strings"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/amountauth"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/twoway"
	"github.com/kecis/kecis/internal/devpki"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// testers are the conformance suite's identities in test mode
// (Config.Tester): entityID, display name and the directory of their keys
// under Config.Dir.
var testers = []struct{ id, name, dir string }{
	{TesterID, testerName, "tester"},
	{SecondTesterID, secondTesterName, "tester2"},
}

// startTester registers, in test mode, the conformance suite and its
// second identity as participants of the tester role, with keys of their
// own.
func (d *Demo) startTester(ctx context.Context) error {
	if !d.cfg.Tester {
		return nil
	}
	for _, t := range testers {
		k, err := d.keys(t.dir, true, devpki.TLSClient)
		if err != nil {
			return err
		}
		ed := k.client(t.id, t.name, metadata.RoleTester)
		// Where the issuer's page posts the browser back with the
		// answer to the suite's cardauth requests: the suite reads the
		// answer off the page's form and follows it nowhere, so the
		// address is the tester's name, not a listener of the demo's.
		ed.Endpoints = frontEndpoints(testerFrontEndpoint(t.id))
		if t.id == TesterID {
			// The suite requests 2-WAY transfers of bank A as a
			// requester, which posts its answer here too (KECIS
			// §15.5.1); and it credits the banks as the bank
			// TesterBankCode, which it publishes on a service it
			// offers to nobody.
			ed.Endpoints = append(ed.Endpoints, metadata.Endpoint{Service: twoway.ServiceRequest, Binding: saml.BindingHTTPPOST,
				Location: testerFrontEndpoint(t.id)})
			ed.Services = []metadata.OfferedService{{Service: banking.ServiceCredit, BankCodes: []string{TesterBankCode}}}
		}
		if err := d.register(ctx, ed); err != nil {
			return err
		}
		if t.id == TesterID {
			d.testerTLS = k.tls.cert
		}
	}
	d.TesterDir = d.path(testers[0].dir)
	return nil
}

// startMerchants registers the demo's shops, each with its own keys and
// TLS client certificate (their facade API keys the hub issued), and makes
// each its SDK client for the card service.
func (d *Demo) startMerchants(ctx context.Context) error {
	if err := d.listenShop(); err != nil {
		return err
	}
	for i, m := range d.Merchants {
		k, err := d.keys(merchants[i].dir, true, devpki.TLSClient)
		if err != nil {
			return err
		}
		ed := k.client(m.EntityID, m.Name, metadata.RoleMerchant)
		if m.EntityID == MerchantID {
			// The checkout is Demo shop's web site: the card company's
			// page posts the browser back there (KECIS §15.7.1).
			ed.Endpoints = frontEndpoints(d.ShopURL + shopCardAuthReturnPath)
			// And the escrow buyer page's "return to the shop" posts the
			// reference to its cash checkout (KECIS §15.6).
			ed.Endpoints = append(ed.Endpoints, escrowEndpoint(d.ShopURL+shopCashReturnPath))
		}
		if err := d.register(ctx, ed); err != nil {
			return err
		}
		if m.Client, err = d.cardClient(m.EntityID, m.Dir); err != nil {
			return err
		}
	}
	return nil
}

// cardServices are the card service's operations.
var cardServices = []string{card.ServiceApprove, card.ServiceCancel, card.ServiceRefund, card.ServiceInquire}

// amountAuthServices are the amountauth service group's operations, which
// the PG's sidecar serves (KECIS §15.3.1).
var amountAuthServices = []string{amountauth.ServiceStart, amountauth.ServiceConfirm, amountauth.ServiceStatus}

// callers is who may call a demo provider's services (KECIS §13.2): the
// role of its contracted callers, narrowed to those participants, and the
// conformance suite (the tester role, narrowed to the demo's tester and its
// second identity) when Config.Tester registers them. A service without
// callers admits nobody.
func callers(cfg Config, role metadata.Role, entities ...string) ([]metadata.Role, []string) {
	roles := []metadata.Role{role, metadata.RoleTester}
	ids := append([]string{}, entities...)
	if cfg.Tester {
		for _, t := range testers {
			ids = append(ids, t.id)
		}
	}
	return roles, ids
}

// cardClient is an SDK client for the card service, calling through the
// hub as the participant whose keys are in dir (signing/, encryption/,
// tls/).
func (d *Demo) cardClient(entityID, dir string) (*card.Client, error) {
	var ks [3]keyset
	for i, k := range []string{"signing", "encryption", "tls"} {
		var err error
		if ks[i], err = load(filepath.Join(dir, k)); err != nil {
			return nil, err
		}
	}
	signer, err := ks[0].signer()
	if err != nil {
		return nil, err
	}
	c, err := connectors.NewClient(connectors.ClientConfig{EntityID: entityID, Signer: signer, Directory: d.directory(),
		Decryption: ks[1].decryption(), HubEntityID: HubID, HubURL: d.HubURL, TLSClient: ks[2].tls, HubTLS: []*x509.Certificate{d.hubTLS},
		Attempts: 1, Timeout: d.clientTimeout})
	if err != nil {
		return nil, err
	}
	return &card.Client{C: c}, nil
}

// testerFrontEndpoint is the HTTP-POST endpoint of a tester identity for
// the issuer's front-channel services (demo.json cardauth.tester_return_url).
func testerFrontEndpoint(entityID string) string {
	return strings.TrimSuffix(entityID, "/kecis") + "/cardauth/return"
}
