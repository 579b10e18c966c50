// Command minprovider is the smallest provider that embeds the SDK: a
// connectors.Handler serving card:approve with the SQLite adapter store,
// behind the federation metadata. It exists to be built and weighed (a
// test in package connectors checks which database drivers it links);
// it is not a product, and approves every request below a limit.
package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/store/sqlitestore"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// issuer approves up to a limit, numbering its approvals.
type issuer struct{ n atomic.Int64 }

func (i *issuer) Approve(_ context.Context, req *card.ApproveRequest) (*card.Approval, error) {
	if req.Amount.Minor > 1_000_000 {
		return nil, card.InsufficientFunds("over the available limit")
	}
	return &card.Approval{ApprovalNumber: fmt.Sprintf("3%07d", i.n.Add(1)), OrderID: req.OrderID, Amount: req.Amount, State: card.Approved}, nil
}

func main() {
	var (
		entityID = flag.String("entity-id", "https://issuer.example/kecis", "this provider's entityID")
		hubID    = flag.String("hub-entity-id", "https://hub.example/kecis", "the hub's entityID")
		hubURL   = flag.String("hub-url", "https://hub.example", "the hub's base URL (metadata)")
		hubCert  = flag.String("hub-cert", "hub.cert.pem", "the hub's metadata signing certificate")
		key      = flag.String("key", "key.pem", "signing and decryption key")
		cert     = flag.String("cert", "cert.pem", "its certificate")
		dsn      = flag.String("store", "sqlite:adapter.db", "the adapter store")
		listen   = flag.String("listen", ":8443", "listen address (TLS)")
	)
	flag.Parse()
	ctx := context.Background()
	signer, err := saml.LoadSigner(*key, *cert)
	check(err)
	dec, err := saml.LoadDecryptionKey(*key, *cert)
	check(err)
	b, err := os.ReadFile(*hubCert)
	check(err)
	blk, _ := pem.Decode(b)
	if blk == nil {
		log.Fatal("hub certificate: no PEM block")
	}
	hc, err := x509.ParseCertificate(blk.Bytes)
	check(err)
	atRest := []byte(os.Getenv("AT_REST_KEY"))
	st, err := sqlitestore.Open(ctx, *dsn, atRest)
	check(err)
	defer st.Close()
	h, err := connectors.NewHandler(connectors.HandlerConfig{
		EntityID:    *entityID,
		Signer:      signer,
		Decryption:  []saml.DecryptionKey{dec},
		Endpoints:   []string{*entityID + "/soap"},
		Directory:   &metadata.Client{HubURL: *hubURL, HubCerts: []*x509.Certificate{hc}},
		HubEntityID: *hubID,
		BackChannel: []string{os.Getenv("HUB_TLS_FINGERPRINT")},
		Services:    card.Services(&issuer{}),
		Store:       st,
		IdemKey:     []byte(os.Getenv("IDEM_KEY")),
	})
	check(err)
	mux := http.NewServeMux()
	mux.Handle("POST /kecis/soap", h)
	log.Fatal(http.ListenAndServeTLS(*listen, *cert, *key, mux))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
