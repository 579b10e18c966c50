// Package ecml is the KECIS data model: ECML v2 (RFC 4112, the Electronic
// Commerce Modeling Language, updating RFC 3106) and the KECIS extension
// elements, as carried in the kecis:Payload of a KECIS service request or
// response (KECIS §2.2, §14). It imports nothing of the project; its only
// dependency is github.com/beevik/etree, the parser the envelope layer
// verifies signatures with, so that one parser reads every byte (no parser
// differential).
//
// # What it offers
//
//   - The model: [Payload] (the container's content), [Ecom] and the whole
//     hierarchy of RFC 4112 §2.2, and the extension elements in
//     [ExtNamespace]. Wire values stay strings; typed accessors convert
//     ([Transaction.Money]).
//   - The codec on etree: [ParsePayload] / [Payload.AppendTo] for a
//     container inside a message, [ParseDocument] / [Payload.MarshalDocument]
//     for standalone documents. Reading is strict about structure and
//     liberal about values; round trips are exact.
//   - Encrypted stand-ins: any sensitive element may be replaced in place by
//     xenc:EncryptedData; [SensitiveElements] and [IsSensitive] tell the
//     envelope layer what to encrypt and let it check that nothing sensitive
//     is left in clear.
//   - Flat names: [FromForm] and [Payload.Form] map every ECML v2 flat field
//     name (the HTML-form names of RFC 4112 §2.1.1) to and from the
//     structure, driven by one table.
//   - [Money] in int64 minor units with the complete ISO 4217 minor-unit
//     table ([MinorUnits]) and the KECIS amount form ([ParseAmount],
//     [FormatAmount]).
//   - Validation: [Payload.Validate] returns every [Problem] with its XML
//     path.
//   - Redaction: [PAN] and [Secret] leaves never print their value; every
//     model type prints and logs itself masked; [MaskPAN], [LuhnValid],
//     [FindPANs], [ContainsPAN] and [RedactPANs] serve the whole project.
//
// # Mapping decisions
//
// RFC 4112 gives some flat fields no explicit XML slot (docs/ecml.md,
// flat form names). KECIS maps them as follows:
//
//	Ecom_Payment_Card_IssueNumber   /Ecom/Payment/Card/@Issuer (the Schema's attribute)
//	Ecom_Merchant_ID                /Ecom/Merchant/@id
//	Ecom_Merchant_Terminal_ID       /Ecom/Merchant/Terminal/@id
//	Ecom_Transaction_ID             /Ecom/Transaction/Id/@Value
//	Ecom_Transaction_Date           /Ecom/Transaction/Date/@Value (Date has element children)
//	Ecom_Transaction_Effective_Date /Ecom/Transaction/Date/Effective @Year @Month (YYMM → 20YY, MM)
//	Ecom_Transaction_Settle_Date    /Ecom/Transaction/Date/Settle @Month @Day (MMDD)
//	Ecom_Transaction_Capture_Date   /Ecom/Transaction/Date/Capture @Month @Day (MMDD)
//	Ecom_UserData_Gender            /kx:UserData/@Gender
//	Ecom_UserData_Preferences       /kx:UserData/@Preferences
//	Ecom_UserData_BirthDate_*       /kx:UserData/kx:BirthDate/@Day @Month @Year
//	Ecom_Device_ID, _Type           /kx:Device/@ID, @Type
//	Ecom_TransactionComplete        /Ecom/TransactionComplete (present or absent)
//
// The three transaction dates are ISO 8583 compact dates in flat form
// (effective date YYMM, field 13; settlement and capture dates MMDD, fields
// 15 and 17), while the XML spreads them over [Day Month Year]; FromForm
// splits them and Form joins them ([FromForm] documents the details).
// Every other flat name maps one to one; [FlatNamePath] answers for any
// name.
//
// # Extension elements (namespace urn:kecis:ecml-ext:1.0, prefix kx)
//
// They stand as siblings of Ecom in the container, so that Ecom stays valid
// RFC 4112 ECML; the container is kecis:Payload (urn:kecis:protocol:1.0).
// Order in the container, and the schema (attributes in brackets, S marks
// what must be encrypted, KECIS §8.1):
//
//	Ecom
//	kx:UserData [Gender Preferences]
//	    kx:BirthDate [Day Month Year]                                   S
//	kx:Device [ID Type]
//	kx:BankAccount [BankCode Role] *                  (Role remitter|payee|settlement)
//	    kx:Holder       text
//	    kx:AccountNumber text                                            S
//	kx:Transfer [Purpose]                             (phishing-prevention|mutual-agreement)
//	    kx:Terms [Principal Currency RepaymentDate InterestRate] text
//	kx:AmountAuth [SessionID Ceiling Currency]
//	    kx:Challenge text (the secret amount, at most Ceiling)          S
//	kx:VirtualCard [Type]                             (credit|check|prepaid|other)
//	    kx:Number text (16-digit VCN, Luhn)                              S
//	    kx:ExpDate [Day Month Year]
//	kx:Escrow [State Carrier Tracking ConfirmBy Reason Auto]           (KECIS §15.6)
//	    State     awaiting-payment|funded|shipped|confirmed|disputed|refunded|cancelled|expired|paid
//	    Carrier   text ≤ 64, Tracking printable ASCII ≤ 64 (escrow:ship)
//	    ConfirmBy xs:dateTime, the automatic confirmation's deadline
//	    Reason    text ≤ 200, the buyer's dispute reason; Auto true|false
//	kx:CardAuth [Acquirer VirtualCard Use MerchantLock NotOnOrAfter]     (KECIS §15.7)
//	kx:OneTimeCode text (4–10 digits)                                    S
//	kx:KeyIn [PasswordPrefix BirthDate BusinessNumber]                   S (as a whole)
//	unknown kx elements *, kept and written back last
//
// Extension elements have no Mode attribute, and an empty extension text
// element is the same as an absent one. A later version of the namespace
// adds elements after kx:KeyIn, so that this version keeps them as unknown.
//
// # Structure rules (stricter than RFC 4112's "deliberately liberal" text)
//
// Children come in schema order, each at most once (kx:BankAccount and
// unknown extension elements aside); ShipTo, BillTo and ReceiptTo, a choice*
// in the Schema, take Postal, Telecom and Online at most once each, in that
// order, since the flat names have one of each. Unknown elements or
// attributes, prefixed attributes, foreign namespaces, text in element-only
// content, and comments or processing instructions inside ECML data are
// refused with their path ([ParseError]). An attribute holding "" is absent.
// Values are never refused by the reader: [Payload.Validate] reports them.
//
// # Length limits
//
// RFC 4112's MIN is the size a form must allow for on data entry (§2.1.1),
// not a maximum, so no maximum is below it. Where the MIN is the size of the
// underlying ISO field, it is the maximum: the ISO 8583 identifiers and codes
// (approval 12, action 13, reason 4, POS 12, reference 12, acquirer and
// forwarder 13, CID 8), the processing code (exactly 6 digits) and trace
// number (1–6 digits). Track data take ISO/IEC 7813's own limits (track 1
// 79, track 2 40) and response data ISO 8583's 99, because the RFC's 39 and
// 27 are too small for real tracks. Elsewhere KECIS sets a ceiling that real
// data fits: 16 for name prefixes and suffixes, postal codes, the terminal ID
// and the loyalty verification value, 64 for other name parts, ids, types,
// the language tag, loyalty numbers and the AAV, 128 for names, company,
// street lines, city, state, order, wallet and user identifiers, transaction
// ID and date, 32 for telephone numbers, 254 for e-mail (RFC 5321), 255 for
// Merchant, Processor and terminal data, 500 for preferences, 999 for
// private-use data, 1,024 for the merchant ID (a PG names the merchant it
// pays for there by its entityID, which SAML metadata bounds at 1,024,
// KECIS §15.7), 2,000 for loan terms, 2,048 for URLs and 4,096 for the
// base64 transaction signature. Codes, dates, card numbers and amounts are
// bounded by their formats.
//
// # Amounts
//
// Transaction/@Amount (the DTD's attribute; RFC 4112 note 27) carries exactly
// the ISO 4217 minor-unit digits after a period, and a zero-decimal
// currency no period at all: KRW "15000", USD "12.34", BHD "1.234". A
// receiver also accepts an all-zero fraction for a zero-decimal currency
// ("15000.00" KRW is 15000). See [ParseAmount].
package ecml
