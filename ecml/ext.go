package ecml

import (
	"time"

	"github.com/beevik/etree"
)

// Namespaces of the payload.
const (
	// ExtNamespace is the namespace of the KECIS extension elements: data
	// that ECML v2 lacks (KECIS §14.1). They stand as siblings of
	// Ecom in the payload container, so that Ecom itself stays valid
	// RFC 4112 ECML.
	ExtNamespace = "urn:kecis:ecml-ext:1.0"
	// ExtPrefix is the prefix KECIS writes for [ExtNamespace]; readers accept
	// any prefix bound to it.
	ExtPrefix = "kx"
	// ProtocolNamespace is the KECIS protocol namespace, of the container
	// element kecis:Payload (KECIS §2.2).
	ProtocolNamespace = "urn:kecis:protocol:1.0"
	// ProtocolPrefix is the prefix KECIS writes for [ProtocolNamespace].
	ProtocolPrefix = "kecis"
	// PayloadElement is the local name of the container element.
	PayloadElement = "Payload"
	// XMLEncNamespace is the W3C XML Encryption namespace of the
	// xenc:EncryptedData stand-ins.
	XMLEncNamespace = "http://www.w3.org/2001/04/xmlenc#"
	// XMLEncElementType is the EncryptedData/@Type of an encrypted element,
	// the only kind KECIS uses (KECIS §8.1).
	XMLEncElementType = XMLEncNamespace + "Element"
)

// Payload is the content of a KECIS payload container (kecis:Payload,
// KECIS §14.1): exactly one ECML v2 Ecom element and the KECIS extension
// elements in [ExtNamespace].
//
// Children of the container appear, and are written, in this fixed order:
//
//	Ecom
//	kx:UserData      kx:Device       kx:BankAccount*   kx:Transfer
//	kx:AmountAuth    kx:VirtualCard  kx:Escrow        kx:CardAuth
//	kx:OneTimeCode   kx:KeyIn        (each possibly an xenc:EncryptedData)
//	unknown elements in ExtNamespace*, in document order
//
// The two sensitive top-level elements come last among the known ones and
// next to each other, so that an encrypted stand-in's position says which
// slot it holds (see EncryptedOneTimeCode).
type Payload struct {
	Ecom *Ecom

	UserData     *UserData
	Device       *Device
	BankAccounts []*BankAccount
	Transfer     *Transfer
	AmountAuth   *AmountAuth
	VirtualCard  *VirtualCard
	Escrow       *Escrow
	CardAuth     *CardAuth

	// OneTimeCode is kx:OneTimeCode: a one-time code of 4 to 10 digits (the
	// code texted to a payee in a 2-WAY transfer, KECIS §15.5). Sensitive.
	OneTimeCode Secret
	// EncryptedOneTimeCode is an xenc:EncryptedData child of the container in
	// the OneTimeCode slot: after the clear extension elements and before a
	// clear kx:KeyIn or a second stand-in. A lone top-level stand-in always
	// lands here, whatever it hides (only decryption tells); it is written
	// back in the same place.
	EncryptedOneTimeCode *etree.Element
	// KeyIn is kx:KeyIn, the Korean key-in payment data. Sensitive as a
	// whole.
	KeyIn *KeyIn
	// EncryptedKeyIn is an xenc:EncryptedData found after the OneTimeCode
	// slot was taken.
	EncryptedKeyIn *etree.Element

	// Unknown holds detached copies of the container's children in
	// ExtNamespace that this version does not know, in document order: they
	// are written back last, never dropped, and never validated.
	Unknown []*etree.Element
}

// UserData is kx:UserData [Gender Preferences] with an optional
// kx:BirthDate: the ECML flat fields Ecom_UserData_Gender (note 36),
// Ecom_UserData_Preferences (note 34) and Ecom_UserData_BirthDate_* that
// RFC 4112 gives no XML slot.
type UserData struct {
	Gender      string // "M" or "F" (case-insensitive)
	Preferences string
	BirthDate   *BirthDate // sensitive (KECIS §8.1)
	// EncryptedBirthDate is the xenc:EncryptedData that stands where
	// kx:BirthDate stands.
	EncryptedBirthDate *etree.Element
}

// BirthDate is kx:BirthDate [Day Month Year]; every part is secret.
type BirthDate struct {
	Day   Secret
	Month Secret
	Year  Secret
}

// Device is kx:Device [ID Type]: Ecom_Device_ID (note 37) and
// Ecom_Device_Type (note 38), which have no XML slot in RFC 4112.
type Device struct {
	ID   string
	Type string
}

// BankAccount is kx:BankAccount [BankCode Role] with children kx:Holder
// (text, public) and kx:AccountNumber (text, sensitive). A payload may hold
// several (a transfer's remitter and payee).
type BankAccount struct {
	// BankCode is the 3-digit Korean bank code (KFTC), e.g. "004".
	BankCode string
	// Role is "remitter", "payee" or "settlement" (a merchant's or an escrow
	// account).
	Role string
	// Holder is the account holder's name as the bank records it.
	Holder string
	// AccountNumber is digits, optionally grouped with single hyphens.
	AccountNumber Secret
	// EncryptedAccountNumber is the xenc:EncryptedData that stands where
	// kx:AccountNumber stands.
	EncryptedAccountNumber *etree.Element
}

// Transfer purposes (kx:Transfer/@Purpose), from the 2-WAY transaction
// verification paper (KECIS §15.5).
const (
	PurposePhishingPrevention = "phishing-prevention"
	PurposeMutualAgreement    = "mutual-agreement"
)

// Transfer is kx:Transfer [Purpose] with optional kx:Terms: the purpose of a
// transfer that the payee confirms.
type Transfer struct {
	Purpose string // PurposePhishingPrevention or PurposeMutualAgreement
	Terms   *Terms
}

// Terms is kx:Transfer/kx:Terms [Principal Currency RepaymentDate
// InterestRate] with free text: the terms of a mutual-agreement transfer
// (a loan) that are texted to the payee.
type Terms struct {
	Principal     string // an amount in Currency, as Transaction/@Amount
	Currency      string // ISO 4217 alpha-3
	RepaymentDate string // YYYY-MM-DD
	InterestRate  string // percent a year, e.g. "4.5"
	Text          string // the terms in words, as texted to the payee
}

// AmountAuth is kx:AmountAuth [SessionID Ceiling Currency] with
// kx:Challenge: amount authentication (KECIS §15.3). The
// Challenge is the secret amount the cardholder reads from the issuer's SMS;
// it travels encrypted, under the public Ceiling the recipient enforces.
type AmountAuth struct {
	SessionID string
	Ceiling   string // an amount in Currency
	Currency  string
	Challenge Secret // an amount in Currency, at most Ceiling
	// EncryptedChallenge is the xenc:EncryptedData that stands where
	// kx:Challenge stands.
	EncryptedChallenge *etree.Element
}

// Virtual card types (kx:VirtualCard/@Type), the card types of the VCN paper
// (KECIS §15.4).
const (
	VirtualCardCredit  = "credit"
	VirtualCardCheck   = "check"
	VirtualCardPrepaid = "prepaid"
	VirtualCardOther   = "other"
)

// VirtualCard is kx:VirtualCard [Type] with kx:Number (the 16-digit virtual
// card number, sensitive) and kx:ExpDate [Day Month Year].
type VirtualCard struct {
	Type   string
	Number PAN
	// EncryptedNumber is the xenc:EncryptedData that stands where kx:Number
	// stands.
	EncryptedNumber *etree.Element
	ExpDate         *Date // Mode is not allowed here
}

// Escrow states (kx:Escrow/@State, KECIS §15.6): an escrow is
// awaiting-payment → funded → shipped → confirmed (released to the
// merchant), or disputed, refunded (to the buyer), cancelled (before
// payment), expired (unpaid in time); a transfer:collect (KECIS §15.8) is
// awaiting-payment → paid, or cancelled, expired.
const (
	EscrowAwaitingPayment = "awaiting-payment"
	EscrowFunded          = "funded"
	EscrowShipped         = "shipped"
	EscrowConfirmed       = "confirmed"
	EscrowDisputed        = "disputed"
	EscrowRefunded        = "refunded"
	EscrowCancelled       = "cancelled"
	EscrowExpired         = "expired"
	EscrowPaid            = "paid"
)

// EscrowStates lists the states kx:Escrow/@State takes.
var EscrowStates = []string{EscrowAwaitingPayment, EscrowFunded, EscrowShipped, EscrowConfirmed, EscrowDisputed,
	EscrowRefunded, EscrowCancelled, EscrowExpired, EscrowPaid}

// EscrowReasonMax bounds kx:Escrow/@Reason, a dispute's reason.
const EscrowReasonMax = 200

// Escrow is kx:Escrow [State Carrier Tracking ConfirmBy Reason Auto]
// (KECIS §15.6): the state in answers; Carrier and Tracking, the shipment,
// in an escrow:ship request and later answers; ConfirmBy (xs:dateTime) the
// automatic confirmation's deadline; Reason the buyer's dispute reason;
// Auto "true" when the escrow was confirmed automatically.
type Escrow struct {
	State     string
	Carrier   string
	Tracking  string
	ConfirmBy string
	Reason    string
	Auto      string
}

// Uses of a virtual card number (kx:CardAuth/@Use, KECIS §15.4).
const (
	CardAuthSingleUse = "single"
	CardAuthMultiUse  = "multi"
)

// CardAuth is kx:CardAuth [Acquirer VirtualCard Use MerchantLock
// NotOnOrAfter]: what a requester asks of a cardholder authentication
// (KECIS §15.7) or of a virtual card number (KECIS §15.4), and, in a
// vcn:issue response, the controls the issuer granted. Every attribute is
// public and optional in the schema; the service says which it needs
// (cardauth:authenticate requires Acquirer).
type CardAuth struct {
	// Acquirer is the entityID of the PG the card number is for: the issuer
	// encrypts the number for it (KECIS §8, §15.7).
	Acquirer string
	// VirtualCard is "true" or "false" (default false): ask for a virtual
	// number instead of the real one.
	VirtualCard string
	// Use is CardAuthSingleUse (default) or CardAuthMultiUse.
	Use string
	// MerchantLock is "true" (default) or "false": the virtual number is
	// good only at the requesting merchant.
	MerchantLock string
	// NotOnOrAfter is the validity wanted for a virtual number, an
	// xs:dateTime with a time zone; the issuer clamps it.
	NotOnOrAfter string
}

// WantsVirtual reports VirtualCard == "true" (absent means false).
func (c *CardAuth) WantsVirtual() bool { return c != nil && c.VirtualCard == "true" }

// SingleUse reports whether the number is for one use: Use absent or
// "single".
func (c *CardAuth) SingleUse() bool { return c == nil || c.Use != CardAuthMultiUse }

// MerchantLocked reports MerchantLock != "false" (absent means true).
func (c *CardAuth) MerchantLocked() bool { return c == nil || c.MerchantLock != "false" }

// Expiry parses NotOnOrAfter; ok is false when it is absent or malformed
// (Validate reports the latter).
func (c *CardAuth) Expiry() (t time.Time, ok bool) {
	if c == nil || c.NotOnOrAfter == "" {
		return time.Time{}, false
	}
	t, err := parseDateTime(c.NotOnOrAfter)
	return t, err == nil
}

// KeyIn is kx:KeyIn [PasswordPrefix BirthDate BusinessNumber]: the data a
// Korean key-in card payment asks for besides the card (KECIS §15.2, card
// approve). It is sensitive as a whole (card passwords and birth dates,
// KECIS §8.1). Exactly one of BirthDate (personal cards) and
// BusinessNumber (corporate cards) is given.
type KeyIn struct {
	PasswordPrefix Secret // the two leading digits of the card password
	BirthDate      Secret // YYMMDD
	BusinessNumber Secret // the 10-digit business registration number
}
