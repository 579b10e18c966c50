// Package sms is the SMS channel that KECIS participants use to reach
// people's phones: a bank texting a payee the one-time code of a two-way
// transfer (KECIS §15.5, "twoway"), an issuer texting a cardholder the
// amount of an amount-authentication approval (§15.3, "amountauth").
//
// No SMPP client is available to the project, so the channel
// is an interface, [Sender], with an HTTP gateway implementation,
// [HTTPGateway], that speaks the JSON-over-HTTPS dialect most Korean SMS
// gateways offer and can be adapted to others with a body template. Replies
// from phones arrive through a signed webhook, [WebhookHandler]. The
// simulated carrier in examples/telecom implements the gateway side of both.
//
// The package also carries the rules that every sender needs: normalising
// Korean and international phone numbers to E.164 ([NormalizePhone]),
// masking them for logs ([MaskPhone]) and measuring a text in EUC-KR bytes
// to choose between SMS (90 bytes) and LMS (2,000 bytes) ([Measure]).
//
// Texts may carry one-time codes and amounts: this package never logs a
// message text, only its length, the masked recipient and the caller's
// reference.
package sms

import (
	"context"
	"time"
)

// Message is one outbound text.
type Message struct {
	// From is the sender's registered caller number or short code
	// ("1588-1234", "0212345678"). Korean carriers deliver only texts from
	// pre-registered caller numbers (발신번호 사전등록제).
	From string
	// To is the recipient: an E.164 number ("+821012345678") or a Korean
	// mobile number in national format ("010-1234-5678"), which senders
	// normalise to E.164 with [NormalizePhone].
	To string
	// Text is the message text (UTF-8). Its EUC-KR length decides whether
	// it travels as an SMS or an LMS (see [Measure]).
	Text string
	// Ref is the caller's correlation id. Gateways use it as the
	// idempotency key of the send, so a retry with the same Ref is
	// delivered once; replies name the message they answer by the
	// gateway's message id, which the caller maps back to its Ref.
	Ref string
}

// Sender sends a text message. Implementations are safe for concurrent use.
//
// Send returns the gateway's id for the accepted message. An error wrapping
// [ErrNotDelivered] means the message certainly did not reach the gateway
// (the caller may send again freely); an error wrapping [ErrDeliveryUnknown]
// means it may have (the caller may send again with the same Ref, which the
// gateway deduplicates).
type Sender interface {
	Send(ctx context.Context, m Message) (messageID string, err error)
}

// SenderFunc adapts a function to a [Sender].
type SenderFunc func(ctx context.Context, m Message) (string, error)

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, m Message) (string, error) { return f(ctx, m) }

var _ Sender = SenderFunc(nil)

// Reply is a text that a phone sent back to a sender's number.
type Reply struct {
	// ID is the gateway's id of the reply. A gateway may deliver a reply
	// more than once (it retries a webhook that did not answer); handlers
	// deduplicate by ID.
	ID string `json:"id,omitempty"`
	// From is the replying phone's number, E.164.
	From string `json:"from"`
	// To is the number the reply was sent to: the sender's caller number.
	To string `json:"to"`
	// Text is the reply text (UTF-8).
	Text string `json:"text"`
	// ReceivedAt is when the carrier received the reply.
	ReceivedAt time.Time `json:"received_at"`
	// InReplyTo is the gateway's message id of the message that the phone
	// answered, when the gateway knows it.
	InReplyTo string `json:"in_reply_to,omitempty"`
}

// ReplyHandler receives the replies that a webhook accepted. It should be
// idempotent on [Reply.ID]. An error makes the webhook answer 500 so that
// the gateway delivers the reply again later.
type ReplyHandler interface {
	HandleReply(ctx context.Context, r Reply) error
}

// ReplyHandlerFunc adapts a function to a [ReplyHandler].
type ReplyHandlerFunc func(ctx context.Context, r Reply) error

// HandleReply calls f.
func (f ReplyHandlerFunc) HandleReply(ctx context.Context, r Reply) error { return f(ctx, r) }

var _ ReplyHandler = ReplyHandlerFunc(nil)
