package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/amountauth"
	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/connectors/sidecar"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
	"github.com/kecis/kecis/saml/metadata"
)

// The demo shop's checkout: the Demo shop's (MerchantID) web site, a
// merchant's side of amount authentication (KECIS §15.3, docs/demo.md,
// "Amount authentication"). It sells one product; the buyer picks one of
// the demo's test cards — shown masked, the number stays on the server —
// and pays:
//
//  1. POST /checkout starts the purchase with amountauth:start through the
//     hub's JSON facade, as the shop (its API key; the card in clear, the
//     facade's development mode), and answers a page whose form, submitted
//     at once by a nonce'd script or by its button, posts the session
//     (SessionID, and the order as RelayState) to the PG's cardholder page,
//     the HTTP-POST endpoint the PG's metadata publishes (KECIS §10.2,
//     §15.3.2);
//  2. the cardholder types there the amount the card company texted;
//  3. the PG's page returns the browser to POST /return (the shop's
//     return_url in the PG's merchants table), where the shop asks
//     amountauth:status and shows the outcome.
//
// The shop keeps its orders in memory (orderBook: the session, its order and
// the public ceiling that status must name, KECIS §15.3.1); the session is
// the PG's, and status answers only the merchant that started it (KECIS
// §13.3). No page needs JavaScript; every page is no-store and framed by
// nobody, under a CSP with a nonce.

// Paths of the shop's checkout.
const (
	shopCheckoutPath = "/checkout"
	shopReturnPath   = "/return"
)

// The shop's product: one, at a price that is authenticated (above the
// PG's minimum purchase) and that every valid test card but the check
// card's can pay.
const (
	shopProduct   = "KECIS 머그컵"
	shopProductEN = "KECIS mug"
	shopPrice     = 15_000 // KRW
)

// maxShopOrders bounds the shop's order book: the oldest order is
// forgotten first.
const maxShopOrders = 1000

// maxShopForm caps a checkout or return form: a card choice, or the PG's
// SessionID, RelayState and State.
const maxShopForm = 4 << 10

//go:embed shop.html.tmpl
var shopHTML string

var shopPages = template.Must(template.New("shop").Parse(shopHTML))

// shop is the demo shop's checkout.
type shop struct {
	merchant *Merchant
	cards    []TestCard
	hubURL   string
	// phones is the telecom's phone list, which the pages link to.
	phones string
	hub    *http.Client
	// directory finds the PG's page in its metadata.
	directory *metadata.Client
	log       *slog.Logger
	rand      io.Reader
	orders    orderBook
	// The cardholder-authentication checkout (shop_cardauth.go): the
	// shop's front channel, the PG its card numbers are for, its orders.
	front    *connectors.FrontChannel
	acquirer string
	cardAuth cardAuthBook
	// The cash checkout (shop_escrow.go): the merchant's escrow client for
	// the holder bank (nil: no cash checkout), the bank's name and "my
	// escrow payments" page, the shop's settlement account, its orders.
	escrow         *escrow.Client
	escrowBankName string
	escrowMyURL    string
	settlement     cashSettlement
	cash           cashBook
}

// shopOrder is an order of the shop paid with amount authentication: what
// the shop asks amountauth:status with (KECIS §15.3.1).
type shopOrder struct {
	order, ceiling, currency string
}

// orderBook is the shop's orders by session, the newest maxShopOrders.
type orderBook struct {
	mu    sync.Mutex
	byID  map[string]shopOrder
	order []string // sessions, oldest first
}

func (b *orderBook) put(session string, o shopOrder) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byID == nil {
		b.byID = map[string]shopOrder{}
	}
	if _, ok := b.byID[session]; ok {
		return
	}
	if len(b.order) >= maxShopOrders {
		delete(b.byID, b.order[0])
		b.order = b.order[1:]
	}
	b.byID[session] = o
	b.order = append(b.order, session)
}

func (b *orderBook) get(session string) (shopOrder, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.byID[session]
	return o, ok
}

// startShop serves the demo shop's checkout on a loopback port of its own
// (Config.Shop). It is bound before the PG starts, whose merchants table
// names its return URL.
func (d *Demo) startShop(context.Context) error {
	front, err := d.shopFront(d.Merchants[0])
	if err != nil {
		return err
	}
	s := &shop{merchant: d.Merchants[0], cards: d.Cards, hubURL: d.HubURL, phones: d.TelecomURL + "/phones",
		hub: &http.Client{Timeout: d.clientTimeout, Transport: &http.Transport{
			TLSClientConfig: saml.PinnedTLS(tls.Certificate{}, []*x509.Certificate{d.hubTLS})}},
		directory: d.directory(), log: d.cfg.Log.With("component", "demo shop"), rand: rand.Reader,
		front: front, acquirer: PGID}
	d.escrowShop(s)
	d.serve(d.shopListener, s.handler(), nil)
	return nil
}

// listenShop binds the checkout's listener (Config.Shop) before the
// merchants register: Demo shop's metadata names its return endpoint of
// cardholder authentication there (KECIS §15.7.1).
func (d *Demo) listenShop() error {
	if d.shopListener != nil {
		return nil
	}
	l, err := d.listen("checkout", d.cfg.Shop, "http", &d.ShopURL)
	d.shopListener = l
	return err
}

// handler serves the checkout (GET /), the purchase (POST /checkout) and
// the return from the PG's page (POST /return).
func (s *shop) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveCheckout)
	mux.HandleFunc("POST "+shopCheckoutPath, s.servePay)
	mux.HandleFunc("POST "+shopReturnPath, s.serveReturn)
	mux.HandleFunc("POST "+shopCardAuthPath, s.servePayCardAuth)
	mux.HandleFunc("POST "+shopCardAuthReturnPath, s.serveCardAuthReturn)
	mux.HandleFunc("POST "+shopCashPath, s.servePayCash)
	mux.HandleFunc("POST "+shopCashReturnPath, s.serveCashReturn)
	mux.HandleFunc("GET "+shopCashOrdersPath+"{order}", s.serveCashOrder)
	mux.HandleFunc("POST "+shopCashOrdersPath+"{order}/{action}", s.serveCashAction)
	return mux
}

// shopCard is a test card as the checkout offers it: masked, with its
// holder's phone at the telecom, where the card company's text arrives.
type shopCard struct {
	Index           int
	Masked, Holder  string
	About, AboutEN  string
	Selected        bool
	Phone, PhoneURL string
}

// shopPage is what a page of the shop shows.
type shopPage struct {
	Nonce                     string
	Product, ProductEN, Price string
	Cards                     []shopCard
	Phones                    string
	// Redirect: the PG's page and the session to post to it.
	PageURL, SessionID, Order string
	// The outcome of a purchase.
	State, Approval, Amount, Card string
	// Problem is why the purchase could not start (public text).
	Problem string
	// CardAuth is the cardholder-authentication checkout's section, or
	// its outcome.
	CardAuth *cardAuthView
	// Cash is the cash checkout's section, or an order's page.
	Cash *cashView
}

func (s *shop) serveCheckout(w http.ResponseWriter, r *http.Request) {
	p := &shopPage{Product: shopProduct, ProductEN: shopProductEN, Price: won(shopPrice), Phones: s.phones, CardAuth: cardAuthCheckout(),
		Cash: s.cashCheckout()}
	for i, c := range s.cards {
		ko, en := aboutCard(c)
		p.Cards = append(p.Cards, shopCard{Index: i, Masked: c.PAN.Masked(), Holder: c.Holder, About: ko, AboutEN: en, Selected: i == 0,
			Phone: c.Phone, PhoneURL: s.phones + "/" + strings.ReplaceAll(c.Phone, "-", "")})
	}
	s.render(w, r, http.StatusOK, "checkout", p, "")
}

// aboutCard says, in Korean and English, what a test card is at the
// issuer: its product, its limit or balance, and what stops it.
func aboutCard(c TestCard) (string, string) {
	ko, en := "신용, 한도 "+won(c.Limit), "credit, limit "+won(c.Limit)
	if c.Type == "check" {
		ko, en = "체크, 잔액 "+won(c.Limit), "check, balance "+won(c.Limit)
	}
	switch {
	case c.Status == "blocked":
		ko, en = ko+", 정지", en+", blocked"
	case c.Status == "lost":
		ko, en = ko+", 분실 신고", en+", reported lost"
	case c.Result == CardExpired:
		ko, en = ko+fmt.Sprintf(", %02d/%d 만료", c.ExpMonth, c.ExpYear), en+fmt.Sprintf(", expired %02d/%d", c.ExpMonth, c.ExpYear)
	case c.Delay > 0:
		ko, en = ko+", 응답 지연", en+", slow issuer"
	}
	return ko, en
}

// servePay starts the purchase of the product with the chosen card and
// sends the browser to the PG's page (KECIS §15.3.2).
func (s *shop) servePay(w http.ResponseWriter, r *http.Request) {
	// The checkout's own form only: the shop's pages post it, another
	// site's must not start a purchase (and text a cardholder).
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		s.problem(w, r, http.StatusForbidden, "이 상점의 결제 화면에서 결제하세요 · Pay from this shop's checkout")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxShopForm)
	if err := r.ParseForm(); err != nil {
		s.problem(w, r, http.StatusBadRequest, "잘못된 요청 · Bad request")
		return
	}
	i, err := strconv.Atoi(r.PostForm.Get("card"))
	if err != nil || i < 0 || i >= len(s.cards) {
		s.problem(w, r, http.StatusBadRequest, "카드를 고르세요 · Choose a card")
		return
	}
	c := s.cards[i]
	order, err := s.newOrder()
	if err != nil {
		s.log.ErrorContext(r.Context(), "demo shop: order number", "error", err)
		s.problem(w, r, http.StatusInternalServerError, "일시적인 오류 · A temporary error")
		return
	}
	fields := map[string]string{"Ecom_ConsumerOrderID": order, "Ecom_Transaction_Amount": strconv.Itoa(shopPrice),
		"Ecom_Transaction_CurrencyCode": "KRW", "Ecom_Transaction_Type": "credit",
		"Ecom_Payment_Card_Number": c.PAN.Reveal(), "Ecom_Payment_Card_ExpDate_Month": fmt.Sprintf("%02d", c.ExpMonth),
		"Ecom_Payment_Card_ExpDate_Year": strconv.Itoa(c.ExpYear)}
	ans, public, err := s.call(r.Context(), "start", "shop-"+order, fields)
	if err != nil {
		s.log.ErrorContext(r.Context(), "demo shop: amountauth:start", "order", order, "error", err)
		s.problem(w, r, http.StatusBadGateway, "결제를 시작하지 못했습니다 · The payment could not start: "+public)
		return
	}
	session, state := ans.Fields["KECIS_AmountAuth_SessionID"], ans.Fields["Ecom_Transaction_ResponseData"]
	s.log.InfoContext(r.Context(), "demo shop: amountauth started", "order", order, "card", c.PAN, "status", ans.Status,
		"sub_status", ans.SubStatus, "session", session, "state", state)
	if session != "" {
		s.orders.put(session, shopOrder{order: order, ceiling: ans.Fields["KECIS_AmountAuth_Ceiling"], currency: ans.Fields["KECIS_AmountAuth_Currency"]})
	}
	switch {
	case session == "":
		s.problem(w, r, http.StatusOK, "결제를 시작하지 못했습니다 · The payment could not start: "+describeAnswer(ans))
	case state == string(amountauth.AwaitingAmount) || state == string(amountauth.Processing):
		s.redirect(w, r, ans.Provider, session, order)
	default:
		// Ended at once: approved below the minimum purchase, or refused.
		s.outcome(w, r, ans)
	}
}

// redirect answers the page that takes the browser to the PG's page: the
// HTTP-POST endpoint of the provider's amountauth in its metadata.
func (s *shop) redirect(w http.ResponseWriter, r *http.Request, provider, session, order string) {
	ep, err := s.directory.Endpoint(r.Context(), provider, sidecar.PageService, saml.BindingHTTPPOST)
	if err != nil {
		s.log.ErrorContext(r.Context(), "demo shop: the PG's page", "provider", provider, "error", err)
		s.problem(w, r, http.StatusBadGateway, "결제 페이지를 찾지 못했습니다 · The PG publishes no amount-authentication page")
		return
	}
	origin, ok := formOrigin(ep.Location)
	if !ok {
		s.log.ErrorContext(r.Context(), "demo shop: the PG's page is no http(s) URL", "provider", provider)
		s.problem(w, r, http.StatusBadGateway, "결제 페이지를 찾지 못했습니다 · The PG publishes no usable amount-authentication page")
		return
	}
	s.render(w, r, http.StatusOK, "redirect", &shopPage{PageURL: ep.Location, SessionID: session, Order: order}, origin)
}

// serveReturn is the return from the PG's page: the outcome, as
// amountauth:status tells it (the form's State is the browser's word).
func (s *shop) serveReturn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxShopForm)
	if err := r.ParseForm(); err != nil {
		s.problem(w, r, http.StatusBadRequest, "잘못된 요청 · Bad request")
		return
	}
	session := r.PostForm.Get("SessionID")
	o, ok := s.orders.get(session)
	if !ok {
		s.problem(w, r, http.StatusNotFound, "이 상점의 주문이 아닙니다 · No such order at this shop")
		return
	}
	ans, public, err := s.call(r.Context(), "status", "", map[string]string{"KECIS_AmountAuth_SessionID": session,
		"KECIS_AmountAuth_Ceiling": o.ceiling, "KECIS_AmountAuth_Currency": o.currency})
	if err != nil {
		s.log.ErrorContext(r.Context(), "demo shop: amountauth:status", "session", session, "error", err)
		s.problem(w, r, http.StatusBadGateway, "결제 결과를 확인하지 못했습니다 · The outcome could not be read: "+public)
		return
	}
	s.log.InfoContext(r.Context(), "demo shop: amountauth returned", "session", session, "status", ans.Status,
		"state", ans.Fields["Ecom_Transaction_ResponseData"])
	// status answers Success in every state (KECIS §15.3.1); anything
	// else is a refusal: an unknown session, another merchant's.
	if ans.Status != "Success" || ans.Fields["Ecom_Transaction_ResponseData"] == "" {
		s.problem(w, r, http.StatusOK, "결제 결과를 확인하지 못했습니다 · The outcome could not be read: "+describeAnswer(ans))
		return
	}
	s.outcome(w, r, ans)
}

// outcome shows a session's outcome from an amountauth answer.
func (s *shop) outcome(w http.ResponseWriter, r *http.Request, ans *callapi.CallResponse) {
	f := ans.Fields
	p := &shopPage{State: f["Ecom_Transaction_ResponseData"], Approval: f["Ecom_Transaction_ApprovalCode"], Order: f["Ecom_ConsumerOrderID"],
		SessionID: f["KECIS_AmountAuth_SessionID"], Product: shopProduct, ProductEN: shopProductEN, Phones: s.phones}
	if m, err := ecml.ParseAmount(f["Ecom_Transaction_Amount"], f["Ecom_Transaction_CurrencyCode"]); err == nil && m.Currency == "KRW" {
		p.Amount = won(m.Minor)
	}
	origin := ""
	if p.State == string(amountauth.AwaitingAmount) || p.State == string(amountauth.Processing) {
		// Not over: the buyer may go back to the PG's page.
		if ep, err := s.directory.Endpoint(r.Context(), ans.Provider, sidecar.PageService, saml.BindingHTTPPOST); err == nil {
			if o, ok := formOrigin(ep.Location); ok {
				p.PageURL, origin = ep.Location, o
			}
		}
	}
	s.render(w, r, http.StatusOK, "outcome", p, origin)
}

// call posts an amountauth operation to the hub's facade as the shop. An
// error is a failure to get an answer; public then says what the buyer
// may read (the facade's problem title and detail, or nothing).
func (s *shop) call(ctx context.Context, op, key string, fields map[string]string) (*callapi.CallResponse, string, error) {
	body, err := json.Marshal(callapi.CallRequest{Fields: fields})
	if err != nil {
		return nil, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.hubURL+"/v1/amountauth/"+op, bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.merchant.APIKey)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := s.hub.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("the hub: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("the hub's answer: %w", err)
	}
	var ans callapi.CallResponse
	if err := json.Unmarshal(b, &ans); err == nil && ans.Status != "" {
		return &ans, "", nil
	}
	var problem struct{ Title, Detail string }
	if err := json.Unmarshal(b, &problem); err != nil || problem.Title == "" {
		return nil, "", fmt.Errorf("the hub answered HTTP %d with no answer or problem", resp.StatusCode)
	}
	public := problem.Title
	if problem.Detail != "" {
		public += ": " + problem.Detail
	}
	return nil, public, fmt.Errorf("the hub answered HTTP %d: %s", resp.StatusCode, public)
}

// describeAnswer is an answer's public status: outcome, codes and the
// provider's message.
func describeAnswer(a *callapi.CallResponse) string {
	parts := []string{a.Outcome, a.Status}
	if a.SubStatus != "" {
		parts = append(parts, a.SubStatus)
	}
	if a.Message != "" {
		parts = append(parts, a.Message)
	}
	return strings.Join(parts, " / ")
}

// newOrder is a fresh order number: SHOP- and 16 base32 letters and
// digits (no run of digits a hub could read as a card number).
func (s *shop) newOrder() (string, error) {
	b := make([]byte, 10)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", err
	}
	return "SHOP-" + base32.StdEncoding.EncodeToString(b), nil
}

// sessionShape reports whether id can be a session identifier: 1 to 64
// characters of the base64url alphabet (the PG's are 22).
func sessionShape(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	return strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == ""
}

// formOrigin is the origin of a form's action for the CSP's form-action:
// an http(s) URL with a host, nothing that could break the header.
func formOrigin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || strings.ContainsAny(u.Host, " ;,'\"") {
		return "", false
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), true
}

// problem renders a page that says why the purchase cannot go on.
func (s *shop) problem(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "problem", &shopPage{Problem: msg}, "")
}

// render executes a page into a buffer first (a template error never
// leaves half a page) and sends it: no-store, never framed or sniffed, no
// referrer, a CSP whose nonce admits the page's style and script, and
// whose form-action admits the shop and, when set, the PG's page.
func (s *shop) render(w http.ResponseWriter, r *http.Request, status int, name string, p *shopPage, formTo string) {
	nonce := make([]byte, 16)
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		s.log.ErrorContext(r.Context(), "demo shop: no nonce", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.Nonce = base64.RawURLEncoding.EncodeToString(nonce)
	var b bytes.Buffer
	if err := shopPages.ExecuteTemplate(&b, name, p); err != nil {
		s.log.ErrorContext(r.Context(), "demo shop: render", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setShopHeaders(w.Header(), p.Nonce, formTo)
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// won writes a KRW amount as the shop shows it: 15,000원.
func won(n int64) string { return ecml.Money{Minor: n, Currency: "KRW"}.Display() }
