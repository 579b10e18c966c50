package demo

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/banking"
	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/connectors/escrow/page"
	"github.com/kecis/kecis/connectors/store"
	bankadapter "github.com/kecis/kecis/examples/bank/kecisadapter"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// Escrow at bank A (KECIS §15.6, docs/escrow.md "In the demo"): bank A
// holds escrows for the demo's merchants — escrow:open, ship, refund,
// status and the non-escrow cash payment transfer:collect (KECIS §15.8),
// the engine of connectors/escrow over the bank's escrow holding account
// (examples/bank/kecisadapter.Escrow), its state in the bank's database.
// The buyer's pages (connectors/escrow/page) are under EscrowPath on the
// bank's customer pages listener and on its KECIS endpoint's HTTPS
// listener; their entry there, EscrowPath + "/pay", is the HTTP-POST
// endpoint of escrow:pay in bank A's metadata, where a shop sends its
// buyer with the order's reference. A sweep every 15 seconds, on
// the demo's clock, confirms shipped escrows whose deadline passed,
// expires unpaid orders and carries on pending releases (a settlement
// account at bank B is credited through the hub).

// EscrowPath is the path of bank A's escrow buyer pages under its native
// listener.
const EscrowPath = "/escrow"

// escrowServiceNames are the escrow services a bank holding escrows
// offers to merchants.
var escrowServiceNames = []string{escrow.ServiceOpen, escrow.ServiceShip, escrow.ServiceRefund, escrow.ServiceStatus, escrow.ServiceCollect}

// escrowServices are the escrow services at the holder bank, for
// merchants (and, in test mode, the tester and its second identity: the
// escrow module asks for the tester's escrow as another merchant, which
// must be answered "no such escrow", KECIS §13.3).
func (d *Demo) escrowServices() []metadata.OfferedService {
	roles, ids := d.testCallers(metadata.RoleMerchant)
	if d.cfg.Tester {
		ids = append(ids, SecondTesterID)
	}
	var out []metadata.OfferedService
	for _, s := range escrowServiceNames {
		out = append(out, metadata.OfferedService{Service: s, Callers: roles, CallerEntities: ids})
	}
	return out
}

// escrowLate binds a bank's escrow service functions once its engine runs
// (the engine needs the bank's signer and SDK client, which exist once its
// KECIS endpoint does; the bank registers — and so is called — after).
type escrowLate struct {
	dir escrow.Directory
	fns map[string]connectors.ServiceFunc
}

func (l *escrowLate) add(svcs map[string]connectors.ServiceFunc, dir escrow.Directory) {
	l.dir = dir
	for _, s := range escrowServiceNames {
		svcs[s] = func(ctx context.Context, r *connectors.Request) (*connectors.Response, error) {
			fn := l.fns[s]
			if fn == nil {
				return nil, fmt.Errorf("demo: escrow service %s not running", s)
			}
			return fn(ctx, r)
		}
	}
}

// startEscrow runs escrow at bank b (see above) and binds its services.
func (d *Demo) startEscrow(ctx context.Context, b *Bank, p *kecisProvider, mux *http.ServeMux, late *escrowLate, log *slog.Logger) error {
	dir := bankDir(b)
	var keys [2][]byte // at-rest key, session key
	for i, name := range []string{"escrow-at-rest-key", "escrow-session-key"} {
		var err error
		if keys[i], err = secret(d.path(dir, name), 32); err != nil {
			return err
		}
	}
	sealer, err := store.NewSealer(keys[0], nil)
	if err != nil {
		return err
	}
	log = log.With("component", "escrow")
	md := d.directory()
	holder := &bankadapter.Escrow{Bank: b.Bank, Banking: &banking.Client{C: b.Client, Resolver: b.Resolver, BankCode: b.Code}, Log: log}
	e, err := escrow.New(ctx, escrow.Config{DB: b.Bank.DB(), Holder: holder, Sealer: sealer, Signer: p.signer, Issuer: b.EntityID,
		Now: d.Clock.Now, Log: log})
	if err != nil {
		return err
	}
	shops := page.DirectoryShops(md)
	// The buyer's statement names the shop of the escrow.
	holder.Shop = func(ctx context.Context, reference string) string {
		x, err := e.Get(ctx, reference)
		if err != nil {
			return ""
		}
		s, err := shops(ctx, x.Merchant)
		if err != nil || s.Name == x.Merchant {
			return ""
		}
		return s.Name
	}
	pages, err := page.New(page.Config{Engine: e, Customers: &bankadapter.TwoWay{Bank: b.Bank}, SessionKey: keys[1], Prefix: EscrowPath,
		Shops: shops, BankName: b.Name, Log: log})
	if err != nil {
		return err
	}
	// On the customer pages' listener, and on the KECIS endpoint's HTTPS
	// listener, where the shops send their buyers (the session cookie is
	// Secure; KECIS §10.2), as the 2-WAY request pages are.
	for _, m := range []*http.ServeMux{mux, p.mux} {
		m.Handle(EscrowPath+"/", pages)
		m.Handle("GET "+EscrowPath, http.RedirectHandler(EscrowPath+"/", http.StatusSeeOther))
	}
	b.Escrow, b.EscrowURL, b.EscrowPayURL = e, b.KECIS+EscrowPath+"/", b.KECIS+EscrowPath+"/pay"
	late.fns = escrow.Services(e, late.dir)
	d.background(func(ctx context.Context) error {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			if rep, err := e.Sweep(ctx); err != nil {
				log.WarnContext(ctx, "escrow sweep", "error", err.Error())
			} else if rep != (escrow.SweepReport{}) {
				log.InfoContext(ctx, "escrow sweep", "auto_confirmed", rep.AutoConfirmed, "expired", rep.Expired,
					"released", rep.Released, "pending", rep.Pending, "finished", rep.Finished, "failed", rep.Failed)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
	return nil
}

// escrowEndpoint is the HTTP-POST endpoint of escrow:pay in the holder
// bank's metadata: its buyer's pages' entry.
func escrowEndpoint(location string) metadata.Endpoint {
	return metadata.Endpoint{Service: escrow.ServicePay, Binding: saml.BindingHTTPPOST, Location: location}
}
