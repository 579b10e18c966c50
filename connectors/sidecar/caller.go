package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/connectors/callapi"
	"github.com/kecis/kecis/connectors/httpserver"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Caller is the calling direction: the provider's backend posts
// POST /v1/{group}/{operation} on loopback with the JSON of the hub's
// facade (connectors/callapi: flat ECML fields, optional recipient and
// routing hints, Idempotency-Key header); the sidecar builds the KECIS
// request, encrypts it for the recipient (found by card BIN or bank code in
// the federation metadata when not named), signs it, sends it through the
// hub (retrying with the same key while the outcome is unknown) and
// answers with the verified, decrypted result, with the HTTP status the
// facade gives the same answer (callapi.HTTPStatus: 402 for a refused
// payment, 202 Pending, 503 unavailable…). The card may come in clear:
// the backend is the provider's own, on loopback, and the sidecar encrypts
// it; what its service requires must be there (callapi.CheckRequired).
// authentication_results, signed kecis:AuthenticationResult elements in
// base64 (the amountauth engine's result on the purchase it verified,
// which the native PG passes on without reading it), are embedded in the
// request unchanged (KECIS §3.2); one that is not such an element is
// refused (callapi.ParseAuthenticationResults).
type Caller struct {
	Client   Doer
	Resolver *connectors.Resolver
	Log      *slog.Logger
}

// Doer sends a call through the hub: a *connectors.Client.
type Doer interface {
	Do(ctx context.Context, call connectors.Call) (*connectors.Result, error)
}

// maxCallBody bounds a call's body.
const maxCallBody = 256 << 10

// The caller's problems beside the call API's (callapi): metadata-unavailable
// is the hub's own (httpserver), unknown-encrypted the facade's type with
// what the caller takes, and no-recipient the caller's alone — one status
// and one title per type across the hub and the sidecar.
var (
	ProblemMetadataUnavailable = httpserver.ProblemMetadataUnavailable
	ProblemNoRecipient         = httpserver.NewProblem("no-recipient", http.StatusBadRequest,
		"name the recipient: no metadata resolver is configured")
	ProblemEncryptedHere = callapi.ProblemUnknownEncrypted.WithDetail(
		"encrypted is not taken here: send the card in fields, the sidecar encrypts it for the recipient")
)

// CallerProblems lists every problem the caller answers: its tests answer
// each, and each type is declared once in the program
// (httpserver.NewProblem).
var CallerProblems = []*httpserver.Problem{callapi.ProblemUnknownService, callapi.ProblemIdempotencyKeyMissing,
	callapi.ProblemIdempotencyKeyInvalid, callapi.ProblemBadRequest, callapi.ProblemTooLarge, callapi.ProblemUnreadable,
	callapi.ProblemInvalidFields, callapi.ProblemMissingFields, callapi.ProblemCardNumberInField, callapi.ProblemNoRoute,
	callapi.ProblemInvalidAuthenticationResult, ProblemMetadataUnavailable, ProblemNoRecipient, ProblemEncryptedHere}

// ServeHTTP implements the local endpoint.
func (c *Caller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call, err := c.decode(w, r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	res, err := c.Client.Do(r.Context(), *call)
	if err != nil {
		c.log().WarnContext(r.Context(), "call through the hub", "service", call.Service, "err", ecml.RedactPANs(err.Error()))
		st := saml.Status{Code: saml.StatusResponder, SubCode: saml.CodeProviderUnavailable,
			Message: "the call could not be completed; retry with the same Idempotency-Key"}
		writeJSON(w, http.StatusServiceUnavailable, callapi.NewResponse(callapi.OutcomeUnavailable, call.Recipient, st))
		return
	}
	code, out := answer(call.Recipient, res)
	writeJSON(w, code, out)
}

// decode reads the request into the call to make: path, key, body, the
// fields' checks, the recipient.
func (c *Caller) decode(w http.ResponseWriter, r *http.Request) (*connectors.Call, error) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPost || len(parts) != 3 || parts[0] != "v1" {
		return nil, callapi.ProblemUnknownService.WithDetail("POST /v1/{group}/{operation}")
	}
	service, err := callapi.Service(parts[1], parts[2])
	if err != nil {
		return nil, err
	}
	call := &connectors.Call{Service: service, IdempotencyKey: r.Header.Get("Idempotency-Key")}
	if err := callapi.CheckIdempotencyKey(service, call.IdempotencyKey); err != nil {
		return nil, err
	}
	body, err := callapi.ReadBody(w, r, maxCallBody)
	if err != nil {
		return nil, err
	}
	in, err := callapi.DecodeCallWith(body, callapi.DecodeOptions{AuthenticationResults: true})
	if err != nil {
		return nil, err
	}
	if len(in.Encrypted) > 0 {
		return nil, ProblemEncryptedHere
	}
	if call.AuthResults, err = callapi.ParseAuthenticationResults(in.AuthenticationResults); err != nil {
		return nil, err
	}
	if call.Payload, err = callapi.Payload(in.Fields, callapi.PayloadOptions{ClearSensitive: true}); err != nil {
		return nil, err
	}
	if err := callapi.CheckRequired(service, call.Payload, false); err != nil {
		return nil, err
	}
	bin, bank := "", ""
	if h := in.Routing; h != nil {
		bin, bank = h.CardBIN, h.BankCode
		call.Routing = &saml.Routing{CardBIN: h.CardBIN, CardLast4: h.CardLast4, BankCode: h.BankCode}
	}
	if p := call.Payload.Ecom.Payment; p != nil && p.Card != nil {
		if b := p.Card.Number.BIN(); b != "" {
			bin = b
			call.Routing = &saml.Routing{CardBIN: b, CardLast4: p.Card.Number.Last4()}
		}
	}
	call.Recipient = in.Recipient
	if call.Recipient == "" && c.Resolver != nil {
		if call.Recipient, err = c.Resolver.RecipientFor(r.Context(), service, bin, bank); err != nil {
			if errors.Is(err, connectors.ErrNoRecipient) {
				return nil, callapi.ProblemNoRoute.WithDetail("no participant offers this service for this card or bank")
			}
			return nil, ProblemMetadataUnavailable.WithCause(err)
		}
	}
	if call.Recipient == "" {
		return nil, ProblemNoRecipient
	}
	return call, nil
}

// answer is the call's answer and its HTTP status: pending or unavailable
// when the hub said so (its own signed Pending, ProviderUnavailable or
// HubUnavailable, after the client's retries), else the recipient's answer with its fields,
// decrypted for us — the provider's own backend may see its own answer.
func answer(recipient string, res *connectors.Result) (int, callapi.CallResponse) {
	outcome := callapi.OutcomeAnswered
	switch {
	case res.From != recipient && res.Status.SubCode == saml.CodePending:
		outcome = callapi.OutcomePending
	case res.From != recipient && (res.Status.SubCode == saml.CodeProviderUnavailable || res.Status.SubCode == saml.CodeHubUnavailable):
		outcome = callapi.OutcomeUnavailable
	}
	out := callapi.NewResponse(outcome, recipient, res.Status)
	if res.Response != nil {
		out.RequestID, out.ResponseID = res.Response.InResponseTo, res.Response.ID
		if outcome == callapi.OutcomeAnswered {
			out.AuthenticationResults = callapi.EncodeAuthenticationResults(res.Response.AuthResults)
		}
	}
	if outcome == callapi.OutcomeAnswered && res.Payload != nil {
		out.Fields = map[string]string{}
		for k, vs := range res.Payload.Form() {
			if len(vs) > 0 {
				out.Fields[k] = vs[0]
			}
		}
	}
	return callapi.HTTPStatus(outcome, res.Status), out
}

// fail answers err as a problem document and logs it: a refusal at Info,
// anything at or above 500 at Error with its cause.
func (c *Caller) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpserver.Fail(r.Context(), w, c.log(), "call refused", err)
}

func (c *Caller) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
