package page_test

import (
	"log/slog"
	"net/http"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/connectors/escrow/page"
	"github.com/kecis/kecis/connectors/twoway"
)

// The bank mounts the buyer's pages on its own HTTPS listener and
// publishes https://bank.example/escrow/pay in its metadata as the
// HTTP-POST endpoint of urn:kecis:service:escrow:pay.
func ExampleNew() {
	var (
		engine    *escrow.Engine       // escrow.New(ctx, escrow.Config{...})
		customers twoway.PageCustomers // the bank's login and accounts (the 2-WAY pages' too)
		dir       connectors.Directory // the hub's metadata (metadata.Client)
		key       = make([]byte, 32)   // a secret of the bank
		mux       = http.NewServeMux() // the bank's pages
		log       = slog.Default()
	)
	pages, err := page.New(page.Config{Engine: engine, Customers: customers, SessionKey: key, Prefix: "/escrow",
		BankName: "KECIS은행", Shops: page.DirectoryShops(dir), Log: log})
	if err != nil {
		return // no engine in this example
	}
	mux.Handle("/escrow/", pages)
}
