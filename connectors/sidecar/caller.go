package sidecar

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/kecis/kecis/connectors"
	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// Caller is the calling direction: the provider's backend posts
// POST /v1/{group}/{operation} on loopback with the same JSON as the hub's
// facade (flat ECML fields, optional recipient and routing hints,
// Idempotency-Key header); the sidecar builds the KECIS request, encrypts
// it for the recipient (found by card BIN or bank code in the federation
// metadata when not named), signs it, sends it through the hub (retrying
// with the same key while the outcome is unknown) and answers with the
// verified, decrypted result.
type Caller struct {
	Client   *connectors.Client
	Resolver *connectors.Resolver
	Log      *slog.Logger
}

type callBody struct {
	Recipient string            `json:"recipient"`
	Fields    map[string]string `json:"fields"`
	Routing   *struct {
		CardBIN   string `json:"card_bin"`
		CardLast4 string `json:"card_last4"`
		BankCode  string `json:"bank_code"`
	} `json:"routing"`
}

type callAnswer struct {
	Outcome    string            `json:"outcome"`
	Status     string            `json:"status"`
	SubStatus  string            `json:"sub_status,omitempty"`
	Message    string            `json:"message,omitempty"`
	Provider   string            `json:"provider"`
	RequestID  string            `json:"request_id,omitempty"`
	ResponseID string            `json:"response_id,omitempty"`
	Fields     map[string]string `json:"fields,omitempty"`
}

func problem(w http.ResponseWriter, status int, typ, title string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "urn:kecis:problem:" + typ, "title": title, "status": status})
}

// ServeHTTP implements the local endpoint.
func (c *Caller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPost || len(parts) != 3 || parts[0] != "v1" {
		problem(w, http.StatusNotFound, "not-found", "POST /v1/{group}/{operation}")
		return
	}
	service := saml.ServiceURI(parts[1], parts[2])
	key := r.Header.Get("Idempotency-Key")
	if saml.IsMutation(service) && key == "" {
		problem(w, http.StatusBadRequest, "idempotency-key-missing", "an Idempotency-Key header is required for "+service)
		return
	}
	var in callBody
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
	if err != nil || json.Unmarshal(b, &in) != nil {
		problem(w, http.StatusBadRequest, "bad-request", "the body must be a JSON object")
		return
	}
	v := url.Values{}
	for k, x := range in.Fields {
		v.Set(k, x)
	}
	if v.Get("Ecom_SchemaVersion") == "" {
		v.Set("Ecom_SchemaVersion", ecml.SchemaVersion)
	}
	payload, err := ecml.FromForm(v)
	if err != nil {
		problem(w, http.StatusBadRequest, "invalid-fields", "the ECML fields are not valid")
		return
	}
	var routing *saml.Routing
	bin, bank := "", ""
	if in.Routing != nil {
		bin, bank = in.Routing.CardBIN, in.Routing.BankCode
		routing = &saml.Routing{CardBIN: in.Routing.CardBIN, CardLast4: in.Routing.CardLast4, BankCode: in.Routing.BankCode}
	}
	if p := payload.Ecom.Payment; p != nil && p.Card != nil {
		if b := p.Card.Number.BIN(); b != "" {
			bin = b
			routing = &saml.Routing{CardBIN: b, CardLast4: p.Card.Number.Last4()}
		}
	}
	recipient := in.Recipient
	if recipient == "" && c.Resolver != nil {
		if recipient, err = c.Resolver.RecipientFor(r.Context(), service, bin, bank); err != nil {
			if errors.Is(err, connectors.ErrNoRecipient) {
				problem(w, http.StatusUnprocessableEntity, "no-route", "no participant offers this service for this card or bank")
			} else {
				c.Log.ErrorContext(r.Context(), "federation metadata", "err", err)
				problem(w, http.StatusServiceUnavailable, "metadata-unavailable", "the federation metadata is unavailable")
			}
			return
		}
	}
	if recipient == "" {
		problem(w, http.StatusBadRequest, "no-recipient", "name the recipient")
		return
	}
	res, err := c.Client.Do(r.Context(), connectors.Call{Recipient: recipient, Service: service, IdempotencyKey: key, Payload: payload, Routing: routing})
	if err != nil {
		c.Log.WarnContext(r.Context(), "call through the hub", "service", service, "err", ecml.RedactPANs(err.Error()))
		writeJSON(w, http.StatusServiceUnavailable, callAnswer{Outcome: "unavailable", Status: "Responder", SubStatus: "ProviderUnavailable", Provider: recipient,
			Message: "the call could not be completed; retry with the same Idempotency-Key"})
		return
	}
	out := callAnswer{Status: res.Status.Top(), SubStatus: res.Status.Sub(), Message: res.Status.Message, Provider: recipient}
	if res.Response != nil {
		out.RequestID, out.ResponseID = res.Response.InResponseTo, res.Response.ID
	}
	code := http.StatusOK
	switch {
	case res.From != recipient && res.Status.SubCode == saml.CodePending:
		out.Outcome, code = "pending", http.StatusAccepted
	case res.From != recipient && res.Status.SubCode == saml.CodeProviderUnavailable:
		out.Outcome, code = "unavailable", http.StatusServiceUnavailable
	default:
		out.Outcome = "answered"
		if res.Payload != nil {
			out.Fields = map[string]string{}
			for k, vs := range res.Payload.Form() {
				if len(vs) > 0 {
					out.Fields[k] = vs[0] // decrypted for us: the provider's own backend may see its own answer
				}
			}
		}
	}
	writeJSON(w, code, out)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
