package ecml

import "github.com/beevik/etree"

// The ECML v2 hierarchy of RFC 4112 §2.2 (Schema §2.2.2, DTD §2.2.1).
//
// Conventions of the model:
//   - Wire values stay strings, exactly as received: ECML is "deliberately
//     liberal" (§2.2), and [Payload.Validate] must be able to report every
//     problem, so parsing never fails on a bad value. Typed accessors such as
//     [Transaction.Money] convert.
//   - An attribute holding "" is absent: it is not written back.
//   - An element is a pointer; nil is absent, and a non-nil element with
//     nothing in it is written back as an empty element.
//   - Every ECML element keeps its own Mode attribute ("Query" or "Assert",
//     §3.1), so that it round-trips. Extension elements have no Mode.
//   - Secrets are [PAN] or [Secret] values, which never print themselves.
//   - Where a sensitive element (KECIS §8.1) may be replaced by an
//     xenc:EncryptedData element, the struct has an Encrypted… field beside
//     the clear one: it holds a detached copy of the EncryptedData element
//     that stood in that element's place. EncryptedData does not say what it
//     hides, so the slot is known only by position: see [ParsePayload].

// Mode values of the Mode attribute that every ECML element may carry
// (RFC 4112 §3.1): a Query element asks for data, its content being the
// default; an Assert element states it. Mode is inherited by descendants
// until overridden; the model stores only what the document says.
const (
	ModeQuery  = "Query"
	ModeAssert = "Assert"
)

// SchemaVersion is the ECML v2 version URN registered by RFC 4112 §5.2.1:
// the fixed value of Ecom/@SchemaVersion (flat name Ecom_SchemaVersion,
// note 20), REQUIRED in every transaction when ECML is used on the web
// (§3.2).
const SchemaVersion = "urn:ietf:params:ecml:v2.0"

// Ecom is the root element of ECML v2 (RFC 4112 §2.2). Its children appear
// in this order: ShipTo, BillTo, ReceiptTo, Payment, Loyalty, User, Merchant,
// Transaction, TransactionComplete.
type Ecom struct {
	ID              string // @id
	Mode            string // @Mode, §3.1
	ConsumerOrderID string // @ConsumerOrderID, Ecom_ConsumerOrderID, note 18
	Merchant        string // @Merchant, Ecom_Merchant, note 23
	Processor       string // @Processor, Ecom_Processor, note 24
	SchemaVersion   string // @SchemaVersion, Ecom_SchemaVersion, note 20: [SchemaVersion]
	WalletID        string // @WalletID, Ecom_WalletID, note 21
	WalletLocation  string // @WalletLocation (anyURI), Ecom_Wallet_Location, note 35

	ShipTo    *Address // Ecom_ShipTo_*
	BillTo    *Address // Ecom_BillTo_*
	ReceiptTo *Address // Ecom_ReceiptTo_*, note 32: when the bill payer is not the card holder
	Payment   *Payment // Ecom_Payment_Card_*
	Loyalty   *Loyalty // Ecom_Loyalty_Card_*; sensitive as a whole (KECIS §8.1)
	// EncryptedLoyalty is the xenc:EncryptedData that stands where Loyalty
	// stands.
	EncryptedLoyalty *etree.Element
	User             *User // Ecom_User_*, Ecom_UserData_Country/_Language
	// MerchantInfo is the Merchant element (merchant→processor data, with
	// Merchant/Terminal); the field is not called Merchant because the
	// Ecom/@Merchant attribute has that name.
	MerchantInfo        *Merchant
	Transaction         *Transaction         // Ecom_Transaction_*
	TransactionComplete *TransactionComplete // Ecom_TransactionComplete, note 22
}

// Address is ShipTo, BillTo or ReceiptTo (RFC 4112 §2.2; mixed content in the
// Schema, a choice of Postal, Telecom and Online). KECIS accepts each child at
// most once, in the order Postal, Telecom, Online, since the flat names have
// one of each; text directly inside is refused.
type Address struct {
	ID      string // @id
	Mode    string
	Postal  *Postal
	Telecom *Telecom
	Online  *Online
}

// Postal is …/Postal [PostalCode CountryCode] with children Name, Company,
// Street, City, StateProv in that order.
type Postal struct {
	Mode        string
	PostalCode  string // @PostalCode (NMTOKEN), …_Postal_PostalCode, note 6
	CountryCode string // @CountryCode (NMTOKEN), …_Postal_CountryCode, note 7: ISO 3166-1 alpha-2
	Name        *Name
	Company     *Text // …_Postal_Company
	Street      *Street
	City        *Text // …_Postal_City
	StateProv   *Text // …_Postal_StateProv, note 5
}

// Name is …/Postal/Name, an empty element whose attributes are NMTOKENs
// (notes 1, 2, 3, 54: Last is the family name, First the first given name).
type Name struct {
	Mode   string
	Prefix string
	First  string
	Middle string
	Last   string
	Suffix string
}

// Street is …/Postal/Street, an empty element [Line1 Line2 Line3] (note 4;
// the DTD makes Line1 #REQUIRED).
type Street struct {
	Mode  string
	Line1 string
	Line2 string
	Line3 string
}

// Telecom is …/Telecom holding Phone.
type Telecom struct {
	Mode  string
	Phone *Phone
}

// Phone is …/Telecom/Phone [Number] (note 8).
type Phone struct {
	Mode   string
	Number string
}

// Online is …/Online holding Email.
type Online struct {
	Mode  string
	Email *Email
}

// Email is …/Online/Email [Address] (note 9).
type Email struct {
	Mode    string
	Address string
}

// Text is an ECML element whose content is text, with its Mode attribute
// (Company, City, StateProv, UserID, Trace, PrivateUse, Response, AAV,
// Inquiry, Signature). Value is the exact character content: nothing is
// trimmed, so that validation can report whitespace (note 102).
type Text struct {
	Mode  string
	Value string
}

// SecretText is a text element whose content is a [Secret]: User/Password
// and Transaction/Data/Track1 and Track2.
type SecretText struct {
	Mode  string
	Value Secret
}

// Payment is /Ecom/Payment, holding Card.
type Payment struct {
	Mode string
	Card *Card // sensitive as a whole (KECIS §8.1)
	// EncryptedCard is the xenc:EncryptedData that stands where Card stands.
	EncryptedCard *etree.Element
}

// Card is /Ecom/Payment/Card [Name Type Number Protocols Verification
// Issuer] with children ExpDate (required by the Schema) and ValidDate.
type Card struct {
	Mode string
	Name string // @Name, Ecom_Payment_Card_Name, note 10
	// Type is the card type (note 11): case-insensitive, only the first up to
	// four letters count (VISA, MAST, AMER…); see [NormalizeCardType].
	Type   string
	Number PAN // @Number, note 12: the PAN with its check digit, no spaces or hyphens
	// Protocols is a space-separated list of the tokens of note 17 (none,
	// set, setcert, iotp, echeck, simcard, phoneid).
	Protocols    string
	Verification Secret // @Verification, note 13: CVV2/CVC2/CID
	// Issuer carries the card issue number of Ecom_Payment_Card_IssueNumber
	// (note 53, 1–2 digits, as on Maestro/Solo cards). RFC 4112 has no
	// explicit XML slot for the issue number (docs/ecml.md, flat form names);
	// KECIS maps it to the Schema's Card/@Issuer attribute.
	Issuer    string
	ExpDate   *Date // Ecom_Payment_Card_ExpDate_Day/_Month/_Year, notes 14–16
	ValidDate *Date // Ecom_Payment_Card_ValidFrom_Day/_Month/_Year
}

// Date is an empty element [Day Month Year] (positiveInteger in the
// Schema): Card/ExpDate and ValidDate, Loyalty/ExpDate and ValidDate,
// Transaction/Date/Effective, Settle and Capture, and kx:VirtualCard/kx:ExpDate
// (which has no Mode). Note 15: the month is 1–12, a leading zero ignored;
// note 16: the year has four digits.
type Date struct {
	Mode  string
	Day   string
	Month string
	Year  string
}

// Loyalty is /Ecom/Loyalty [Name Type Number Verification] with ExpDate and
// ValidDate. It is sensitive as a whole (KECIS §8.1).
type Loyalty struct {
	Mode         string
	Name         string // Ecom_Loyalty_Card_Name
	Type         string // Ecom_Loyalty_Card_Type
	Number       PAN    // Ecom_Loyalty_Card_Number (MIN 40; not necessarily Luhn)
	Verification Secret // Ecom_Loyalty_Card_Verification
	ExpDate      *Date  // Ecom_Loyalty_Card_ExpDate_*: the RFC gives the year MIN 2
	ValidDate    *Date  // Ecom_Loyalty_Card_ValidFrom_*
}

// User is /Ecom/User [CertificateURL DataCountry DataLanguage] with children
// UserID and Password (note 19).
type User struct {
	Mode           string
	CertificateURL string      // @CertificateURL, Ecom_User_Certificate_URL, note 55
	DataCountry    string      // @DataCountry, Ecom_UserData_Country, note 7
	DataLanguage   string      // @DataLanguage (xs:language), Ecom_UserData_Language, note 33
	UserID         *Text       // Ecom_User_ID
	Password       *SecretText // Ecom_User_Password; sensitive (KECIS §8.1)
	// EncryptedPassword is the xenc:EncryptedData that stands where Password
	// stands.
	EncryptedPassword *etree.Element
}

// Merchant is /Ecom/Merchant (merchant→processor data, ISO 8583 style) with
// Terminal.
type Merchant struct {
	Mode string
	// ID carries Ecom_Merchant_ID (the card acceptor ID, ISO 8583 field 42).
	// RFC 4112 gives it no explicit XML slot (docs/ecml.md); KECIS
	// writes it as Merchant/@id.
	ID       string
	Terminal *Terminal
}

// Terminal is /Ecom/Merchant/Terminal [id Data]: Ecom_Merchant_Terminal_ID
// (note 39, ISO 8583 field 41) and Ecom_Merchant_Terminal_Data.
type Terminal struct {
	Mode string
	ID   string
	Data string
}

// Transaction is /Ecom/Transaction [Mode Currency Type Amount] with children
// Id, Code, Date, Data, Inquiry, Signature in that order. Amount is in the
// DTD only (the Schema omits it); KECIS uses it (KECIS §14.3).
type Transaction struct {
	Mode     string
	Currency string // @Currency, Ecom_Transaction_CurrencyCode, note 28: ISO 4217 alpha-3
	// Type is Ecom_Transaction_Type (note 30): "debit" or "credit".
	Type string
	// Amount is Ecom_Transaction_Amount (note 27) in the KECIS form of
	// KECIS §14.3: see [ParseAmount], [Transaction.Money].
	Amount    string
	ID        *TransactionID
	Code      *Code
	Date      *TransactionDate
	Data      *Data
	Inquiry   *Text // Ecom_Transaction_Inquiry (anyURI), note 26
	Signature *Text // Ecom_Transaction_Signature, note 31: base64
}

// TransactionID is /Ecom/Transaction/Id [CID Reference Acquire Forward].
type TransactionID struct {
	Mode string
	// Value carries Ecom_Transaction_ID (note 25). RFC 4112 has no explicit
	// XML slot for it (docs/ecml.md, flat form names); KECIS writes it
	// as the attribute Transaction/Id/@Value, beside the ISO 8583
	// identifiers, rather than as text, so that Id and Date (which has
	// children) carry their own value the same way.
	Value     string
	CID       string // Ecom_Transaction_CID
	Reference string // Ecom_Transaction_Reference_ID (ISO 8583 field 37)
	Acquire   string // Ecom_Transaction_Acquire_ID, note 41 (field 32)
	Forward   string // Ecom_Transaction_Forward_ID, note 42 (field 33)
}

// Code is /Ecom/Transaction/Code [Processing Approval Retrieval Action Reason
// POS] (notes 40, 46, 47, 45).
type Code struct {
	Mode       string
	Processing string // Ecom_Transaction_ProcessingCode (ISO 8583 field 3)
	Approval   string // Ecom_Transaction_ApprovalCode (field 38)
	Retrieval  string // Ecom_Transaction_RetrievalCode
	Action     string // Ecom_Transaction_ActionCode (field 39)
	Reason     string // Ecom_Transaction_ReasonCode
	POS        string // Ecom_Transaction_POSCode (field 22)
}

// TransactionDate is /Ecom/Transaction/Date with Effective, Settle and
// Capture.
type TransactionDate struct {
	Mode string
	// Value carries Ecom_Transaction_Date (note 29, free form, MIN 80).
	// RFC 4112 has no explicit XML slot for it (docs/ecml.md); KECIS
	// writes it as Transaction/Date/@Value, because Date has element
	// children and text beside them would make it mixed content.
	Value string
	// Effective is Ecom_Transaction_Effective_Date (note 44), Settle
	// Ecom_Transaction_Settle_Date (48), Capture Ecom_Transaction_Capture_Date
	// (49). The flat fields are the 4-digit ISO 8583 forms (effective date
	// YYMM, field 13; settlement and capture dates MMDD, fields 15 and 17);
	// see [FromForm] for the conversion.
	Effective *Date
	Settle    *Date
	Capture   *Date
}

// Data is /Ecom/Transaction/Data with the text children Trace, PrivateUse,
// Response, AAV, Track1, Track2 in that order.
type Data struct {
	Mode       string
	Trace      *Text       // Ecom_Transaction_Trace_Audit, note 43 (ISO 8583 field 11)
	PrivateUse *Text       // Ecom_Transaction_PrivateUseData
	Response   *Text       // Ecom_Transaction_ResponseData
	AAV        *Text       // Ecom_Transaction_AAV
	Track1     *SecretText // Ecom_Transaction_Track1, note 50; sensitive
	// EncryptedTrack1 is an xenc:EncryptedData found in the Track1 slot:
	// after AAV and before Track2 or a second stand-in. A lone stand-in
	// always lands here, whichever track it hides; it is written back in the
	// same place, and only decryption tells what it is.
	EncryptedTrack1 *etree.Element
	Track2          *SecretText // Ecom_Transaction_Track2, note 51; sensitive
	// EncryptedTrack2 is an xenc:EncryptedData found after the Track1 slot
	// was taken (by Track1 or by a first stand-in).
	EncryptedTrack2 *etree.Element
}

// TransactionComplete is /Ecom/TransactionComplete, an empty element whose
// presence says the transaction is complete (note 22).
type TransactionComplete struct {
	Mode string
}
