package demo

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/card"
	"github.com/kecis/kecis/connectors/cardauth"
	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// The demo shop's cardholder-authentication checkout (KECIS §15.7,
// docs/demo.md "Cardholder authentication"): as Korean checkouts do, the
// buyer chooses the card company on the shop's page, never types the card
// number there, and pays in three steps:
//
//  1. POST /cardauth builds the shop's signed cardauth:authenticate
//     request — the order, the amount, the PG as kx:CardAuth/@Acquirer,
//     and kx:CardAuth/@VirtualCard when the buyer asks for a virtual
//     number — and answers the auto-submitting form (connectors
//     FrontChannel) that carries it to the card company's page, the
//     HTTP-POST endpoint its metadata publishes;
//  2. the cardholder types the card number and the authentication
//     password there, and at or above the threshold a second factor (a
//     TOTP code or the client certificate);
//  3. the page posts the issuer's signed response to POST /cardauth/return
//     (the shop's HTTP-POST endpoint for the service in its metadata): the
//     shop reads it, then pays with card:approve through the hub to the PG
//     with the card still encrypted for the PG, the AAV and the issuer's
//     signed result embedded unchanged (the shop's SDK card client), and
//     shows the outcome.

// Paths of the cardholder-authentication checkout.
const (
	shopCardAuthPath       = "/cardauth"
	shopCardAuthReturnPath = "/cardauth/return"
)

// maxShopResponse caps the issuer's posted response (a signed response
// with an encrypted card and an embedded result, base64).
const maxShopResponse = 256 << 10

// shopItem is a product of the cardholder-authentication checkout.
type shopItem struct {
	ID, Name, NameEN string
	Price            int64 // KRW
}

// Display is the price as the checkout shows it: 150,000원.
func (i shopItem) Display() string { return won(i.Price) }

// cardAuthProducts are one product below the issuer's threshold (the
// password alone) and one at or above it (a second factor).
var cardAuthProducts = []shopItem{
	{"mug", shopProduct, shopProductEN, shopPrice},
	{"keyboard", "KECIS 기계식 키보드", "KECIS mechanical keyboard", 150_000},
}

// cardCompany is a card company the checkout offers: an issuer of the
// federation with a cardholder-authentication page.
type cardCompany struct{ ID, Name string }

// cardCompanies are the card companies of the checkout.
var cardCompanies = []cardCompany{{IssuerID, "KECIS 카드 · KECIS Card"}}

// cardAuthOrder is an order sent to the card company's page: what reading
// its response needs (the FrontRequest) and what the shop sells.
type cardAuthOrder struct {
	sent    connectors.FrontRequest
	item    shopItem
	virtual bool
}

// cardAuthBook is the shop's cardholder-authentication orders by order
// number, the newest maxShopOrders; an order is taken out once its response
// is read.
type cardAuthBook struct {
	mu    sync.Mutex
	byID  map[string]cardAuthOrder
	order []string
}

func (b *cardAuthBook) put(id string, o cardAuthOrder) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byID == nil {
		b.byID = map[string]cardAuthOrder{}
	}
	if len(b.order) >= maxShopOrders {
		delete(b.byID, b.order[0])
		b.order = b.order[1:]
	}
	b.byID[id] = o
	b.order = append(b.order, id)
}

func (b *cardAuthBook) take(id string) (cardAuthOrder, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.byID[id]
	if ok {
		delete(b.byID, id)
		if i := slices.Index(b.order, id); i >= 0 {
			b.order = slices.Delete(b.order, i, i+1)
		}
	}
	return o, ok
}

// shopFront is the shop's front channel: Demo shop's keys, the federation's
// metadata.
func (d *Demo) shopFront(m *Merchant) (*connectors.FrontChannel, error) {
	sk, err := load(filepath.Join(m.Dir, "signing"))
	if err != nil {
		return nil, err
	}
	ek, err := load(filepath.Join(m.Dir, "encryption"))
	if err != nil {
		return nil, err
	}
	signer, err := sk.signer()
	if err != nil {
		return nil, err
	}
	return connectors.NewFrontChannel(connectors.FrontConfig{EntityID: m.EntityID, Signer: signer, Decryption: ek.decryption(),
		Directory: d.directory(), Log: d.cfg.Log})
}

// cardAuthView is what the checkout and the outcome pages show of a
// cardholder authentication.
type cardAuthView struct {
	Companies []cardCompany
	Products  []shopItem
	Threshold string
	// The outcome.
	OK, Virtual                 bool
	Approval, Method, CardSeen  string
	Factors                     int
	Status, Message, ItemName   string
	ItemNameEN, Amount, OrderID string
}

// methodNames are the authentication methods as the outcome page names them.
var methodNames = map[string]string{
	cardauth.MethodPassword:   "비밀번호 · password",
	cardauth.MethodClientCert: "비밀번호 + 인증서 · password + client certificate",
	cardauth.MethodTOTP:       "비밀번호 + OTP · password + TOTP",
}

// servePayCardAuth sends the browser to the chosen card company's page
// with the shop's signed cardauth:authenticate request (KECIS §15.7.1).
func (s *shop) servePayCardAuth(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		s.problem(w, r, http.StatusForbidden, "이 상점의 결제 화면에서 결제하세요 · Pay from this shop's checkout")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxShopForm)
	if err := r.ParseForm(); err != nil {
		s.problem(w, r, http.StatusBadRequest, "잘못된 요청 · Bad request")
		return
	}
	company := r.PostForm.Get("issuer")
	if !slices.ContainsFunc(cardCompanies, func(c cardCompany) bool { return c.ID == company }) {
		s.problem(w, r, http.StatusBadRequest, "카드사를 고르세요 · Choose a card company")
		return
	}
	i := slices.IndexFunc(cardAuthProducts, func(p shopItem) bool { return p.ID == r.PostForm.Get("product") })
	if i < 0 {
		s.problem(w, r, http.StatusBadRequest, "상품을 고르세요 · Choose a product")
		return
	}
	item, virtual := cardAuthProducts[i], r.PostForm.Get("virtual") != ""
	order, err := s.newOrder()
	if err != nil {
		s.log.ErrorContext(ctx, "demo shop: order number", "error", err)
		s.problem(w, r, http.StatusInternalServerError, "일시적인 오류 · A temporary error")
		return
	}
	tx := &ecml.Transaction{Type: "credit"}
	if err := tx.SetMoney(ecml.Money{Minor: item.Price, Currency: "KRW"}); err != nil {
		s.problem(w, r, http.StatusInternalServerError, "일시적인 오류 · A temporary error")
		return
	}
	ca := &ecml.CardAuth{Acquirer: s.acquirer}
	if virtual {
		ca.VirtualCard = "true"
	}
	p := &ecml.Payload{Ecom: &ecml.Ecom{SchemaVersion: ecml.SchemaVersion, ConsumerOrderID: order, Merchant: s.merchant.Name, Transaction: tx}, CardAuth: ca}
	nonce, err := httpserver.PageNonce(s.rand)
	if err != nil {
		s.problem(w, r, http.StatusInternalServerError, "일시적인 오류 · A temporary error")
		return
	}
	form, sent, err := s.front.Request(ctx, company, cardauth.ServiceAuthenticate,
		connectors.FrontCall{IdempotencyKey: "shop-cardauth-" + order, Payload: p, Nonce: nonce}, order)
	if err != nil {
		s.log.ErrorContext(ctx, "demo shop: cardauth request", "order", order, "issuer", company, "error", err)
		s.problem(w, r, http.StatusBadGateway, "카드사 인증을 시작하지 못했습니다 · The card company's authentication could not start")
		return
	}
	dest, err := connectors.PostEndpoint(ctx, s.directory, company, cardauth.ServiceAuthenticate)
	origin, ok := formOrigin(dest)
	if err != nil || !ok {
		s.problem(w, r, http.StatusBadGateway, "카드사 인증 화면을 찾지 못했습니다 · The card company publishes no authentication page")
		return
	}
	s.cardAuth.put(order, cardAuthOrder{sent: sent, item: item, virtual: virtual})
	s.log.InfoContext(ctx, "demo shop: cardauth started", "order", order, "issuer", company, "amount", item.Price, "virtual", virtual)
	setShopHeaders(w.Header(), nonce, origin)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(form)
}

// serveCardAuthReturn reads the card company's signed response and, when
// the cardholder was authenticated, pays: card:approve through the hub to
// the PG with the card encrypted for the PG, the AAV and the issuer's
// result (KECIS §15.7.1, §15.7.3).
func (s *shop) serveCardAuthReturn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxShopResponse)
	if err := r.ParseForm(); err != nil {
		s.problem(w, r, http.StatusBadRequest, "잘못된 요청 · Bad request")
		return
	}
	order := r.PostForm.Get("RelayState")
	o, ok := s.cardAuth.take(order)
	if !ok {
		s.problem(w, r, http.StatusNotFound, "이 상점의 주문이 아닙니다 · No such order at this shop")
		return
	}
	resp, _, err := s.front.ReadResponse(ctx, r, o.sent)
	if err != nil {
		s.log.WarnContext(ctx, "demo shop: cardauth response refused", "order", order, "reason", saml.AsError(err).Reason, "error", err)
		s.problem(w, r, http.StatusBadRequest, "카드사 응답을 확인하지 못했습니다 · The card company's answer could not be verified")
		return
	}
	v := &cardAuthView{OrderID: order, ItemName: o.item.Name, ItemNameEN: o.item.NameEN, Amount: won(o.item.Price), Virtual: o.virtual,
		Status: resp.Status.Short(), Message: resp.Status.Message}
	if !resp.Status.OK() {
		s.log.InfoContext(ctx, "demo shop: cardauth refused", "order", order, "status", resp.Status.Short())
		s.renderCardAuth(w, r, v)
		return
	}
	pay, err := s.cardAuthPayment(resp, order, o.item.Price)
	if err != nil {
		s.log.ErrorContext(ctx, "demo shop: cardauth response unusable", "order", order, "error", err)
		v.Status, v.Message = "Unusable", "카드사 응답에 결제 정보가 없습니다 · The card company's answer holds no usable payment"
		s.renderCardAuth(w, r, v)
		return
	}
	if len(resp.AuthResults) > 0 {
		ar := resp.AuthResults[0]
		v.Method, v.Factors, v.CardSeen = methodNames[ar.Method], ar.Factors, ar.CardRef
	}
	out, err := s.merchant.Client.Approve(ctx, s.acquirer, pay)
	if err != nil {
		s.log.ErrorContext(ctx, "demo shop: card:approve after cardauth", "order", order, "error", err)
		v.Status, v.Message = "Unknown", "결제 결과를 받지 못했습니다 · No answer to the payment"
		s.renderCardAuth(w, r, v)
		return
	}
	v.Status, v.Message = out.Result.Status.Short(), out.Result.Status.Message
	if out.OK() && out.Approval != nil {
		v.OK, v.Approval = true, out.Approval.ApprovalNumber
	}
	s.log.InfoContext(ctx, "demo shop: paid after cardauth", "order", order, "status", v.Status, "approval", v.Approval, "card", v.CardSeen)
	s.renderCardAuth(w, r, v)
}

// cardAuthPayment is the card:approve request of an authenticated order:
// the response's encrypted card (opaque to the shop), its AAV and signed
// results, for the order and amount the shop sent.
func (s *shop) cardAuthPayment(resp *connectors.FrontResponse, order string, amount int64) (*card.ApproveRequest, error) {
	p := resp.Payload
	if p == nil || p.Ecom == nil || p.Ecom.Payment == nil || p.Ecom.Payment.EncryptedCard == nil || p.Ecom.Transaction == nil ||
		p.Ecom.Transaction.Data == nil || p.Ecom.Transaction.Data.AAV == nil || len(resp.SignedAuthResults) == 0 {
		return nil, errors.New("no encrypted card, AAV or authentication result")
	}
	m, err := p.Ecom.Transaction.Money()
	if err != nil || p.Ecom.ConsumerOrderID != order || m != (ecml.Money{Minor: amount, Currency: "KRW"}) {
		return nil, fmt.Errorf("the answer is for another order or amount")
	}
	return &card.ApproveRequest{OrderID: order, Amount: m, EncryptedCard: p.Ecom.Payment.EncryptedCard,
		AuthValue: p.Ecom.Transaction.Data.AAV.Value, SignedAuthResults: resp.SignedAuthResults,
		IdempotencyKey: "shop-cardauth-pay-" + order}, nil
}

// renderCardAuth shows a cardholder authentication's outcome.
func (s *shop) renderCardAuth(w http.ResponseWriter, r *http.Request, v *cardAuthView) {
	s.render(w, r, http.StatusOK, "cardauth-outcome", &shopPage{CardAuth: v, Phones: s.phones}, "")
}

// cardAuthCheckout is the checkout's cardholder-authentication section.
func cardAuthCheckout() *cardAuthView {
	return &cardAuthView{Companies: cardCompanies, Products: cardAuthProducts, Threshold: won(cardauth.DefaultThreshold)}
}

// setShopHeaders sets the headers of every page of the shop: no-store,
// never framed or sniffed, no referrer, a CSP whose nonce admits the
// page's style and script, and whose form-action admits the shop and,
// when set, formTo.
func setShopHeaders(h http.Header, nonce, formTo string) {
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	formAction := "'self'"
	if formTo != "" {
		formAction += " " + formTo
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; script-src 'nonce-"+nonce+
		"'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", "ko, en")
}
