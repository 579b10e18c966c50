package demo

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/escrow"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// The demo shop's cash checkout (KECIS §15.6, §15.8 transfer:collect,
// §12.9; docs/escrow.md "In the demo"): the buyer pays by account transfer
// at the buyer's own bank, bank A.
//
//  1. POST /cash first asks transfer:collect of bank A through the hub —
//     the order, the amount, the shipping address (shipped goods) and the
//     shop's settlement account (at bank B, encrypted for bank A). The
//     hub's payment policy (kr-2006 by default: cash payments of 100,000
//     KRW or more for shipped goods must use escrow) refuses it above the
//     threshold with PolicyViolation; the shop says so and opens escrow:open
//     instead ("steered into escrow"). Below it, the collect is opened.
//  2. Its page sends the browser to bank A's buyer page (the HTTP-POST
//     endpoint of escrow:pay in bank A's metadata) with the reference; the
//     buyer logs in there and pays from one of its accounts.
//  3. The buyer page's "return to the shop" posts the reference to POST
//     /cash/return (the shop's own HTTP-POST endpoint of escrow:pay in its
//     metadata), which shows the order: GET /cash/orders/{order}, its state
//     read with escrow:status.
//  4. The order page has the shop's "mark shipped" (escrow:ship, carrier
//     and tracking number) and "refund" (escrow:refund) actions — a shop's
//     back office, on the demo's one page.
//  5. The buyer confirms receipt on bank A's page ("my escrow payments");
//     bank A releases the money to the shop's settlement account at bank
//     B through the hub (transfer:credit).

// Paths of the cash checkout.
const (
	shopCashPath       = "/cash"
	shopCashReturnPath = "/cash/return"
	shopCashOrdersPath = "/cash/orders/"
)

// cashProducts are shipped goods: one at the kr-2006 escrow threshold or
// above (steered into escrow), one below it (a direct collect).
var cashProducts = []shopItem{
	{"keyboard", "KECIS 기계식 키보드", "KECIS mechanical keyboard", 150_000},
	{"mugs", "KECIS 머그컵 2개 세트", "Two KECIS mugs", 30_000},
}

// shopShipTo is where the demo's goods go (Ecom/ShipTo: shipped goods).
var shopShipTo = &ecml.Address{Postal: &ecml.Postal{CountryCode: "KR", PostalCode: "04524",
	Name: &ecml.Name{Last: "Kim", First: "Jiho"}, Street: &ecml.Street{Line1: "Sejong-daero 110"}, City: &ecml.Text{Value: "Seoul"}}}

// cashSettlement is the shop's settlement account, where the bank releases
// the money: a bank code and an account number there.
type cashSettlement struct {
	Bank, BankName string
	Account        ecml.Secret
	Holder         string
}

// cashOrder is an order of the cash checkout.
type cashOrder struct {
	order, reference string
	item             shopItem
	// escrow: opened with escrow:open (else transfer:collect); steered: the
	// hub's policy refused the collect first, with policy (its message).
	escrow, steered bool
	policy          string
}

// cashBook is the cash checkout's orders by order number and by the
// bank's reference, the newest maxShopOrders.
type cashBook struct {
	mu    sync.Mutex
	byID  map[string]cashOrder
	byRef map[string]string
	order []string
}

func (b *cashBook) put(o cashOrder) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.byID == nil {
		b.byID, b.byRef = map[string]cashOrder{}, map[string]string{}
	}
	if len(b.order) >= maxShopOrders {
		delete(b.byRef, b.byID[b.order[0]].reference)
		delete(b.byID, b.order[0])
		b.order = b.order[1:]
	}
	b.byID[o.order], b.byRef[o.reference] = o, o.order
	b.order = append(b.order, o.order)
}

func (b *cashBook) get(order string) (cashOrder, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.byID[order]
	return o, ok
}

func (b *cashBook) byReference(ref string) (cashOrder, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.byID[b.byRef[ref]]
	return o, ok
}

// cashView is what the cash checkout's pages show.
type cashView struct {
	Products []shopItem
	Bank     string // the buyer's bank's name
	// The order.
	Order, Reference, Item, ItemEN, Amount string
	Escrow, Steered                        bool
	Policy                                 string
	// PayURL is the bank's buyer page (the HTTP-POST endpoint of
	// escrow:pay); MyURL its "my escrow payments".
	PayURL, MyURL string
	// The state as escrow:status tells it.
	State, Carrier, Tracking, ConfirmBy, Reason string
	Auto                                        bool
	History                                     []string
	Settlement                                  string // the bank and the account, masked
	CanShip, CanRefund, Paid                    bool
	Carriers                                    []string
	Problem                                     string
}

// cashCheckout is the checkout's cash section.
func (s *shop) cashCheckout() *cashView {
	if s.escrow == nil {
		return nil
	}
	return &cashView{Products: cashProducts, Bank: s.escrowBankName}
}

// cashCarriers are the carriers the "mark shipped" form offers.
var cashCarriers = []string{"CJ대한통운", "우체국택배", "한진택배", "롯데택배"}

// servePayCash starts a cash purchase: transfer:collect, or escrow:open
// when the hub's policy requires escrow, then the bank's buyer page.
func (s *shop) servePayCash(w http.ResponseWriter, r *http.Request) {
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
	if s.escrow == nil {
		s.problem(w, r, http.StatusNotFound, "현금 결제를 받지 않습니다 · No cash payments here")
		return
	}
	i := slices.IndexFunc(cashProducts, func(p shopItem) bool { return p.ID == r.PostForm.Get("product") })
	if i < 0 {
		s.problem(w, r, http.StatusBadRequest, "상품을 고르세요 · Choose a product")
		return
	}
	item := cashProducts[i]
	order, err := s.newOrder()
	if err != nil {
		s.log.ErrorContext(ctx, "demo shop: order number", "error", err)
		s.problem(w, r, http.StatusInternalServerError, "일시적인 오류 · A temporary error")
		return
	}
	o := &escrow.Order{Order: order, Amount: ecml.Money{Minor: item.Price, Currency: "KRW"}, ShipTo: shopShipTo,
		SettlementBank: s.settlement.Bank, SettlementAccount: s.settlement.Account, PayeeName: s.settlement.Holder,
		IdempotencyKey: "shop-collect-" + order}
	co := cashOrder{order: order, item: item}
	res, err := s.escrow.Collect(ctx, o)
	if err == nil && !res.OK() && res.Result.Status.SubCode == saml.CodePolicyViolation {
		// The hub's payment policy wants escrow (KECIS §12.9): open one.
		co.escrow, co.steered, co.policy = true, true, res.Result.Status.Message
		s.log.InfoContext(ctx, "demo shop: steered into escrow", "order", order, "amount", item.Price, "policy", co.policy)
		o.IdempotencyKey = "shop-escrow-" + order
		res, err = s.escrow.Open(ctx, o)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "demo shop: cash payment", "order", order, "escrow", co.escrow, "error", err)
		s.problem(w, r, http.StatusBadGateway, "결제를 시작하지 못했습니다 · The payment could not start")
		return
	}
	if !res.OK() || res.Escrow == nil || res.Escrow.Reference == "" {
		st := res.Result.Status
		s.log.InfoContext(ctx, "demo shop: cash payment refused", "order", order, "escrow", co.escrow, "status", st.Short())
		s.problem(w, r, http.StatusOK, "결제를 시작하지 못했습니다 · The payment could not start: "+st.Short()+" "+st.Message)
		return
	}
	co.reference = res.Escrow.Reference
	s.cash.put(co)
	s.log.InfoContext(ctx, "demo shop: cash payment opened", "order", order, "escrow", co.escrow, "reference", co.reference,
		"amount", item.Price)
	pay, err := connectors.PostEndpoint(ctx, s.directory, s.escrow.Bank, escrow.ServicePay)
	origin, ok := formOrigin(pay)
	if err != nil || !ok {
		s.problem(w, r, http.StatusBadGateway, "은행 결제 화면을 찾지 못했습니다 · The bank publishes no payment page")
		return
	}
	v := s.cashOrderView(co)
	v.PayURL = pay
	s.render(w, r, http.StatusOK, "cash-redirect", &shopPage{Cash: v}, origin)
}

// serveCashReturn is where the bank's page brings the buyer back (the
// shop's HTTP-POST endpoint of escrow:pay): the order's page.
func (s *shop) serveCashReturn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxShopForm)
	if err := r.ParseForm(); err != nil {
		s.problem(w, r, http.StatusBadRequest, "잘못된 요청 · Bad request")
		return
	}
	o, ok := s.cash.byReference(r.PostForm.Get(escrow.FieldReference))
	if !ok {
		s.problem(w, r, http.StatusNotFound, "이 상점의 주문이 아닙니다 · No such order at this shop")
		return
	}
	http.Redirect(w, r, shopCashOrdersPath+o.order, http.StatusSeeOther)
}

// serveCashOrder shows an order as escrow:status tells it, with the shop's
// actions.
func (s *shop) serveCashOrder(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	o, ok := s.cash.get(r.PathValue("order"))
	if !ok {
		s.problem(w, r, http.StatusNotFound, "이 상점의 주문이 아닙니다 · No such order at this shop")
		return
	}
	v := s.cashOrderView(o)
	res, err := s.escrow.Status(ctx, escrow.Ref{Reference: o.reference})
	switch {
	case err != nil:
		s.log.ErrorContext(ctx, "demo shop: escrow:status", "order", o.order, "error", err)
		v.Problem = "상태를 확인하지 못했습니다 · The state could not be read"
	case !res.OK() || res.Escrow == nil:
		v.Problem = "상태를 확인하지 못했습니다 · The state could not be read: " + res.Result.Status.Short()
	default:
		a := res.Escrow
		v.State, v.Carrier, v.Tracking, v.Reason, v.Auto, v.History = string(a.State), a.Carrier, a.Tracking, a.Reason, a.Auto, a.History
		if !a.ConfirmBy.IsZero() {
			v.ConfirmBy = a.ConfirmBy.In(kst).Format("2006-01-02 15:04")
		}
		v.CanShip, v.Carriers = o.escrow && a.State == escrow.Funded, cashCarriers
		v.CanRefund = o.escrow && (a.State == escrow.AwaitingPayment || a.State.Holding())
		v.Paid = a.State == escrow.Confirmed || a.State == escrow.Paid
	}
	if ep, err := connectors.PostEndpoint(ctx, s.directory, s.escrow.Bank, escrow.ServicePay); err == nil && v.State == string(escrow.AwaitingPayment) {
		if origin, ok := formOrigin(ep); ok {
			v.PayURL = ep
			s.render(w, r, http.StatusOK, "cash-order", &shopPage{Cash: v}, origin)
			return
		}
	}
	s.render(w, r, http.StatusOK, "cash-order", &shopPage{Cash: v}, "")
}

// serveCashAction runs the shop's "mark shipped" (escrow:ship) or
// "refund" (escrow:refund) on an order and shows it again.
func (s *shop) serveCashAction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		s.problem(w, r, http.StatusForbidden, "이 상점의 화면에서 하세요 · Use this shop's pages")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxShopForm)
	if err := r.ParseForm(); err != nil {
		s.problem(w, r, http.StatusBadRequest, "잘못된 요청 · Bad request")
		return
	}
	o, ok := s.cash.get(r.PathValue("order"))
	if !ok || !o.escrow {
		s.problem(w, r, http.StatusNotFound, "이 상점의 에스크로 주문이 아닙니다 · No such escrow order at this shop")
		return
	}
	ref := escrow.Ref{Reference: o.reference}
	var res *escrow.Result
	var err error
	switch action := r.PathValue("action"); action {
	case "ship":
		carrier, tracking := strings.TrimSpace(r.PostForm.Get("carrier")), strings.TrimSpace(r.PostForm.Get("tracking"))
		if !slices.Contains(cashCarriers, carrier) || tracking == "" || utf8.RuneCountInString(tracking) > 40 {
			s.problem(w, r, http.StatusBadRequest, "택배사와 송장번호를 입력하세요 · Choose the carrier and type the tracking number")
			return
		}
		res, err = s.escrow.Ship(ctx, ref, carrier, tracking, "shop-ship-"+o.order)
	case "refund":
		res, err = s.escrow.Refund(ctx, ref, "shop-refund-"+o.order)
	default:
		s.problem(w, r, http.StatusNotFound, "잘못된 요청 · Bad request")
		return
	}
	if err != nil {
		s.log.ErrorContext(ctx, "demo shop: escrow action", "order", o.order, "error", err)
		s.problem(w, r, http.StatusBadGateway, "은행이 응답하지 않았습니다 · The bank did not answer")
		return
	}
	if !res.OK() {
		st := res.Result.Status
		s.problem(w, r, http.StatusOK, "은행이 거절했습니다 · The bank refused: "+st.Short()+" "+st.Message)
		return
	}
	s.log.InfoContext(ctx, "demo shop: escrow changed", "order", o.order, "state", res.Escrow.State)
	http.Redirect(w, r, shopCashOrdersPath+o.order, http.StatusSeeOther)
}

// cashOrderView is an order's fixed part of the pages.
func (s *shop) cashOrderView(o cashOrder) *cashView {
	return &cashView{Bank: s.escrowBankName, Order: o.order, Reference: o.reference, Item: o.item.Name, ItemEN: o.item.NameEN,
		Amount: o.item.Display(), Escrow: o.escrow, Steered: o.steered, Policy: o.policy, MyURL: s.escrowMyURL,
		Settlement: s.settlement.BankName + " " + ecml.MaskAccount(s.settlement.Account.Reveal())}
}

// kst is Korea's time, which the order page shows deadlines in.
var kst = time.FixedZone("KST", 9*3600)

// escrowShop wires the cash checkout: the merchant's escrow client for the
// holder bank, the shop's settlement account.
func (d *Demo) escrowShop(s *shop) {
	holder := d.escrowBank()
	settle := d.settlementCustomer()
	if holder == nil || settle == nil || s.merchant.Client == nil {
		return
	}
	s.escrow = &escrow.Client{C: s.merchant.Client.C, Bank: holder.EntityID}
	s.escrowBankName, s.escrowMyURL = holder.Name, holder.EscrowURL
	s.settlement = cashSettlement{Bank: settle.bank.Code, BankName: settle.bank.Name, Account: ecml.Secret(settle.c.Accounts[0].Number),
		Holder: settle.c.Name}
}

// escrowBank is the demo's bank that holds escrows (bank A).
func (d *Demo) escrowBank() *Bank {
	for _, b := range d.Banks {
		if b.escrow {
			return b
		}
	}
	return nil
}

// settlementCustomer is the shop's account holder at its bank (bank B):
// where escrows and collects are released.
func (d *Demo) settlementCustomer() *settlementHolder {
	for _, b := range d.Banks {
		for _, c := range b.Customers {
			if c.Merchant == MerchantID && len(c.Accounts) > 0 {
				return &settlementHolder{b, c}
			}
		}
	}
	return nil
}

// settlementHolder is a merchant's account holder at a bank.
type settlementHolder struct {
	bank *Bank
	c    *BankCustomer
}
