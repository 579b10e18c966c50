package pg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The issuer gateway contract (the client side; KECIS §15.2 "card"): the
// KECIS JSON call API, whose bodies, answers and HTTP statuses
// connectors/callapi declares (the hub's facade and the sidecar's calling
// endpoint speak it; KECIS §12.4).
// The PG links nothing of KECIS and reads it with its own small types:
//
//	POST {IssuerGatewayURL}/v1/card/{approve|cancel|refund|inquire}
//	Idempotency-Key: <key>            (approve, cancel, refund)
//	{"fields": {"Ecom_ConsumerOrderID": "T261122000001", …}, "routing": {"card_bin": "…"},
//	 "authentication_results": ["…"]}   (an approve's opaque authentication, when it has one)
//
// An answer (application/json, outcome answered, pending or unavailable)
// comes with 200 Success, 402 a refused payment, 400/409/422 another
// refusal, 202 pending, 503 unavailable; the gateway's own refusal of the
// request is an application/problem+json 4xx.

// ECML flat field names the PG sends and reads.
const (
	fOrderID      = "Ecom_ConsumerOrderID"
	fAmount       = "Ecom_Transaction_Amount"
	fCurrency     = "Ecom_Transaction_CurrencyCode"
	fType         = "Ecom_Transaction_Type"
	fCardNumber   = "Ecom_Payment_Card_Number"
	fExpMonth     = "Ecom_Payment_Card_ExpDate_Month"
	fExpYear      = "Ecom_Payment_Card_ExpDate_Year"
	fApprovalCode = "Ecom_Transaction_ApprovalCode"
	fResponseData = "Ecom_Transaction_ResponseData"
	fPrivateUse   = "Ecom_Transaction_PrivateUseData"
	// fMerchant (Ecom/@Merchant) names the sub-merchant a PG pays for, as
	// the cardholder knows it; fMerchantID (Ecom/Merchant/@id, the card
	// acceptor ID of ISO 8583 field 42) is the PG's merchant ID for it.
	fMerchant   = "Ecom_Merchant"
	fMerchantID = "Ecom_Merchant_ID"
	// fAAV is the cardholder authentication value (Transaction/Data/AAV).
	fAAV = "Ecom_Transaction_AAV"
)

// Issuer-side approval states, as Ecom_Transaction_ResponseData reports
// them.
const (
	issuerApproved          = "approved"
	issuerCancelled         = "cancelled"
	issuerSettled           = "settled"
	issuerPartiallyRefunded = "partially-refunded"
	issuerRefunded          = "refunded"
)

// maxGatewayBody bounds an answer of the issuer gateway.
const maxGatewayBody = 256 << 10

// gateway is the PG's client of the issuer gateway.
type gateway struct {
	base    string
	client  *http.Client
	timeout time.Duration
}

// answerKind classifies an answer: whether the issuer decided, whether the
// outcome is unknown, or whether the request certainly reached no issuer.
type answerKind int

const (
	// answered: the issuer's decision, Success or a refusal.
	answered answerKind = iota
	// unknown: pending, unavailable, a timeout, a transport error, an
	// unreadable answer. The request may have been carried out.
	unknown
	// notProcessed: the gateway refused the request itself (4xx): no
	// issuer saw it.
	notProcessed
)

// answer is what one gateway call returned.
type answer struct {
	kind       answerKind
	httpStatus int
	status     string // Success, Requester, Responder
	subStatus  string // Declined, InsufficientFunds, …
	message    string // public text, redacted of digit runs
	requestID  string
	fields     map[string]string
	problem    string // the problem type of a 4xx, e.g. "no-route"
	reason     string // why the outcome is unknown, for the log
}

func (a *answer) success() bool { return a.kind == answered && a.status == "Success" }

type gatewayRequest struct {
	Fields map[string]string `json:"fields"`
	// Routing carries the card's BIN (public: the first six digits the PG
	// keeps in the masked card), so that a cancel, refund or inquire reaches
	// the issuer that approved it.
	Routing *gatewayRouting `json:"routing,omitempty"`
	// AuthenticationResults is an approval's opaque authentication
	// evidence (PayRequest.Authentication), passed on as it came.
	AuthenticationResults []string `json:"authentication_results,omitempty"`
}

type gatewayResponse struct {
	Outcome   string            `json:"outcome"`
	Status    string            `json:"status"`
	SubStatus string            `json:"sub_status"`
	Message   string            `json:"message"`
	Provider  string            `json:"provider"`
	RequestID string            `json:"request_id"`
	Fields    map[string]string `json:"fields"`
}

type gatewayProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// call posts one request. It never returns an error: every failure is an
// answer of kind unknown (the request may have been carried out) or
// notProcessed (it certainly was not). The call is detached from ctx's
// cancellation (a merchant hanging up must not abandon an approval
// mid-flight) and bounded by the gateway timeout instead.
type gatewayRouting struct {
	CardBIN string `json:"card_bin,omitempty"`
}

// binOf is the BIN of a (masked or full) card number, or "".
func binOf(card string) string {
	if len(card) >= 6 {
		for i := 0; i < 6; i++ {
			if card[i] < '0' || card[i] > '9' {
				return ""
			}
		}
		return card[:6]
	}
	return ""
}

func (g *gateway) call(ctx context.Context, op, key, bin string, fields map[string]string) answer {
	return g.callWith(ctx, op, key, bin, fields, nil)
}

// callWith is call with an approval's opaque authentication evidence.
func (g *gateway) callWith(ctx context.Context, op, key, bin string, fields map[string]string, auth []string) answer {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout)
	defer cancel()
	gr := gatewayRequest{Fields: fields, AuthenticationResults: auth}
	if bin != "" {
		gr.Routing = &gatewayRouting{CardBIN: bin}
	}
	body, err := json.Marshal(gr)
	if err != nil {
		return answer{kind: notProcessed, reason: "encode request: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/v1/card/"+op, bytes.NewReader(body))
	if err != nil {
		return answer{kind: notProcessed, reason: "build request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := g.client.Do(req)
	if err != nil {
		reason := "transport error"
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "timeout after " + g.timeout.String()
		}
		// The error names the URL and the cause, never the body.
		return answer{kind: unknown, reason: reason + ": " + redactDigits(err.Error())}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxGatewayBody+1))
	if err != nil || len(raw) > maxGatewayBody {
		return answer{kind: unknown, httpStatus: res.StatusCode, reason: "unreadable answer"}
	}
	return classify(res.StatusCode, raw)
}

// classify reads an answer by its HTTP status and body.
func classify(code int, raw []byte) answer {
	a := answer{httpStatus: code}
	switch {
	case code == http.StatusOK, code == http.StatusAccepted, code == http.StatusServiceUnavailable,
		code >= 400 && code < 500 && isAnswer(raw):
		var r gatewayResponse
		if err := json.Unmarshal(raw, &r); err != nil {
			a.kind, a.reason = unknown, fmt.Sprintf("HTTP %d with a body that is not the gateway's JSON", code)
			return a
		}
		a.status, a.subStatus = lastSegment(r.Status), lastSegment(r.SubStatus)
		a.message, a.requestID = redactDigits(r.Message), redactDigits(r.RequestID)
		a.fields = r.Fields
		switch {
		case code != http.StatusAccepted && code != http.StatusServiceUnavailable && r.Outcome == "answered" && a.status != "":
			a.kind = answered
		default:
			a.kind = unknown
			a.reason = "outcome " + strconv.Quote(r.Outcome)
			if a.subStatus != "" {
				a.reason += " (" + a.subStatus + ")"
			}
		}
		return a
	case code == http.StatusRequestTimeout, code == http.StatusConflict, code == http.StatusTooEarly,
		code == http.StatusTooManyRequests, code >= 500:
		// In flight elsewhere, throttled or failed on the way: the request
		// may yet be carried out, or may be retried with the same key.
		a.kind, a.reason = unknown, fmt.Sprintf("HTTP %d", code)
		a.problem, a.message = readProblem(raw)
		return a
	case code >= 400 && code < 500:
		a.problem, a.message = readProblem(raw)
		if a.problem == "idempotency-key-reused" {
			// The gateway holds another request under this key: what
			// became of ours is unknown. Left pending for an operator.
			a.kind, a.reason = unknown, "the gateway holds another request under this Idempotency-Key"
			return a
		}
		a.kind = notProcessed
		return a
	}
	a.kind, a.reason = unknown, fmt.Sprintf("unexpected HTTP %d", code)
	return a
}

// isAnswer reports whether a 4xx body is the issuer's answer (a refusal it
// decided: it has an outcome) rather than the gateway's problem document.
func isAnswer(raw []byte) bool {
	var r struct {
		Outcome string `json:"outcome"`
	}
	return json.Unmarshal(raw, &r) == nil && r.Outcome != ""
}

// readProblem reads an RFC 9457 problem: the last segment of its type
// ("urn:kecis:problem:no-route" → "no-route") and its title.
func readProblem(raw []byte) (typ, title string) {
	var p gatewayProblem
	if json.Unmarshal(raw, &p) != nil {
		return "", ""
	}
	return lastSegment(p.Type), redactDigits(p.Title)
}

// lastSegment returns what follows the last ':' or '/', so that full
// URNs ("urn:kecis:status:Declined") and short names compare alike.
func lastSegment(s string) string {
	if i := strings.LastIndexAny(s, ":/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

// refusalCode maps an issuer's refusal of an operation to the PG's result
// code. pending is true for sub-statuses that decide nothing.
func refusalCode(kind OpKind, sub string) (code ResultCode, pending bool) {
	switch sub {
	case "Pending", "ProviderUnavailable", "HubUnavailable", "Duplicate", "InFlight":
		// Pending and unavailable decide nothing, nor does InFlight (an
		// earlier attempt under the same key is still being processed);
		// Duplicate means the issuer already holds this order: an inquiry
		// tells its state.
		return CodePending, true
	case "Declined":
		if kind == OpApprove {
			return CodeCardDeclined, false
		}
		return CodeIssuerRefused, false
	case "InsufficientFunds":
		return CodeInsufficientFunds, false
	case "InvalidCard":
		return CodeInvalidCard, false
	case "Expired":
		return CodeCardExpired, false
	case "LimitExceeded":
		if kind == OpRefund {
			return CodeRefundExceeded, false
		}
		return CodeLimitExceeded, false
	case "AuthenticationRequired":
		return CodeAuthRequired, false
	case "PolicyViolation":
		switch kind {
		case OpCancel:
			return CodeAfterSettlement, false
		case OpRefund:
			return CodeBeforeSettlement, false
		}
	}
	return CodeIssuerRefused, false
}

// notProcessedCode maps a gateway's refusal of the request itself.
func notProcessedCode(problem string) ResultCode {
	if problem == "no-route" {
		return CodeNoIssuer
	}
	return CodeNotProcessed
}

// refundedFromFields reads "refunded=<amount>" from the private-use data of
// an answer (the KECIS card mapping); ok is false when absent.
func refundedFromFields(fields map[string]string) (int64, bool) {
	v, ok := strings.CutPrefix(fields[fPrivateUse], "refunded=")
	if !ok {
		return 0, false
	}
	n, err := parseAmount(v)
	return n, err == nil
}

// parseAmount reads an ECML KRW amount: digits, and (accepted for a
// zero-decimal currency) an all-zero fraction.
func parseAmount(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if strings.Trim(frac, "0") != "" || !allDigits(whole) || len(whole) > 15 {
		return 0, fmt.Errorf("not a KRW amount")
	}
	return strconv.ParseInt(whole, 10, 64)
}
