package ecml

import (
	"maps"
	"slices"
	"sort"
)

// field describes one leaf value of a payload (an attribute, or the text of a
// text element): its path from the container, its ECML flat name (RFC 4112
// §2.1.1, the HTML-form name), whether it is sensitive, the longest value
// KECIS accepts and its syntax. The same table drives FromForm and Form (one
// getter and one setter per row), Validate's length and syntax checks, and
// SensitivePaths.
//
// Maximum lengths are in characters; the package documentation ("Length
// limits") says how they were chosen. A row with max 0 has a fixed format
// (a date part, a code, a card number, an amount) that bounds it instead.
type field struct {
	path      string
	flat      string
	sensitive bool
	max       int
	check     checkFunc // syntax, beyond length and white space; nil: none
	// get and set reach the value from a payload; set creates the elements
	// on the way. BankAccount rows (a list) have neither.
	get func(*Payload) string
	set func(*Payload, string) error
}

// ref reaches a node of a payload; with create it allocates missing
// elements on the way, without it returns nil when one is missing.
type ref[T any] func(p *Payload, create bool) *T

func rootRef(p *Payload, _ bool) *Payload { return p }

// elem extends a ref to a child element.
func elem[P, C any](parent ref[P], f func(*P) **C) ref[C] {
	return func(p *Payload, create bool) *C {
		pp := parent(p, create)
		if pp == nil {
			return nil
		}
		slot := f(pp)
		if *slot == nil {
			if !create {
				return nil
			}
			*slot = new(C)
		}
		return *slot
	}
}

// leaf extends a ref to a string value.
func leaf[P any](parent ref[P], f func(*P) *string) ref[string] {
	return func(p *Payload, create bool) *string {
		pp := parent(p, create)
		if pp == nil {
			return nil
		}
		return f(pp)
	}
}

func textOf[P any](parent ref[P], f func(*P) **Text) ref[string] {
	return leaf(elem(parent, f), func(t *Text) *string { return &t.Value })
}

func secretTextOf[P any](parent ref[P], f func(*P) **SecretText) ref[string] {
	return leaf(elem(parent, f), func(t *SecretText) *string { return (*string)(&t.Value) })
}

// fields is the table; fieldByPath and fieldByFlat index it.
var (
	fields      = buildFields()
	fieldByPath = func() map[string]*field {
		m := make(map[string]*field, len(fields))
		for i := range fields {
			m[fields[i].path] = &fields[i]
		}
		return m
	}()
	fieldByFlat = func() map[string]*field {
		m := make(map[string]*field)
		for i := range fields {
			if fields[i].flat != "" {
				m[fields[i].flat] = &fields[i]
			}
		}
		return m
	}()
)

func buildFields() []field {
	var fs []field
	// add appends a row reached through r.
	add := func(path, flat string, r ref[string], max int, check checkFunc) {
		fs = append(fs, field{
			path: path, flat: flat, max: max, check: check,
			get: func(p *Payload) string {
				if s := r(p, false); s != nil {
					return *s
				}
				return ""
			},
			set: func(p *Payload, v string) error {
				*r(p, true) = v
				return nil
			},
		})
	}
	secret := func() { fs[len(fs)-1].sensitive = true }
	root := ref[Payload](rootRef)

	ecom := elem(root, func(p *Payload) **Ecom { return &p.Ecom })
	ecomAttr := func(name, flat string, f func(*Ecom) *string, max int, check checkFunc) {
		add("/Ecom/@"+name, flat, leaf(ecom, f), max, check)
	}
	ecomAttr("id", "", func(e *Ecom) *string { return &e.ID }, 64, checkNCName)
	ecomAttr("ConsumerOrderID", "Ecom_ConsumerOrderID", func(e *Ecom) *string { return &e.ConsumerOrderID }, 128, checkASCII)
	ecomAttr("Merchant", "Ecom_Merchant", func(e *Ecom) *string { return &e.Merchant }, 255, checkText)
	ecomAttr("Processor", "Ecom_Processor", func(e *Ecom) *string { return &e.Processor }, 255, checkText)
	ecomAttr("SchemaVersion", "Ecom_SchemaVersion", func(e *Ecom) *string { return &e.SchemaVersion }, 0, checkSchemaVersion)
	ecomAttr("WalletID", "Ecom_WalletID", func(e *Ecom) *string { return &e.WalletID }, 128, checkText)
	ecomAttr("WalletLocation", "Ecom_Wallet_Location", func(e *Ecom) *string { return &e.WalletLocation }, 2048, checkURI)

	// Addresses: ShipTo, BillTo, ReceiptTo (notes 1–9, 32, 54).
	for _, role := range []struct {
		name string
		f    func(*Ecom) **Address
	}{
		{"ShipTo", func(e *Ecom) **Address { return &e.ShipTo }},
		{"BillTo", func(e *Ecom) **Address { return &e.BillTo }},
		{"ReceiptTo", func(e *Ecom) **Address { return &e.ReceiptTo }},
	} {
		a := elem(ecom, role.f)
		base := "/Ecom/" + role.name
		flat := "Ecom_" + role.name
		add(base+"/@id", "", leaf(a, func(a *Address) *string { return &a.ID }), 64, checkNCName)
		postal := elem(a, func(a *Address) **Postal { return &a.Postal })
		name := elem(postal, func(p *Postal) **Name { return &p.Name })
		for _, part := range []struct {
			attr string
			max  int
			f    func(*Name) *string
		}{
			{"Prefix", 16, func(n *Name) *string { return &n.Prefix }},
			{"First", 64, func(n *Name) *string { return &n.First }},
			{"Middle", 64, func(n *Name) *string { return &n.Middle }},
			{"Last", 64, func(n *Name) *string { return &n.Last }},
			{"Suffix", 16, func(n *Name) *string { return &n.Suffix }},
		} {
			add(base+"/Postal/Name/@"+part.attr, flat+"_Postal_Name_"+part.attr, leaf(name, part.f), part.max, checkNMTOKEN)
		}
		add(base+"/Postal/Company", flat+"_Postal_Company", textOf(postal, func(p *Postal) **Text { return &p.Company }), 128, checkText)
		street := elem(postal, func(p *Postal) **Street { return &p.Street })
		add(base+"/Postal/Street/@Line1", flat+"_Postal_Street_Line1", leaf(street, func(s *Street) *string { return &s.Line1 }), 128, checkText)
		add(base+"/Postal/Street/@Line2", flat+"_Postal_Street_Line2", leaf(street, func(s *Street) *string { return &s.Line2 }), 128, checkText)
		add(base+"/Postal/Street/@Line3", flat+"_Postal_Street_Line3", leaf(street, func(s *Street) *string { return &s.Line3 }), 128, checkText)
		add(base+"/Postal/City", flat+"_Postal_City", textOf(postal, func(p *Postal) **Text { return &p.City }), 128, checkText)
		add(base+"/Postal/StateProv", flat+"_Postal_StateProv", textOf(postal, func(p *Postal) **Text { return &p.StateProv }), 128, checkText)
		add(base+"/Postal/@PostalCode", flat+"_Postal_PostalCode", leaf(postal, func(p *Postal) *string { return &p.PostalCode }), 16, checkNMTOKEN)
		add(base+"/Postal/@CountryCode", flat+"_Postal_CountryCode", leaf(postal, func(p *Postal) *string { return &p.CountryCode }), 0, checkCountry)
		phone := elem(elem(a, func(a *Address) **Telecom { return &a.Telecom }), func(t *Telecom) **Phone { return &t.Phone })
		add(base+"/Telecom/Phone/@Number", flat+"_Telecom_Phone_Number", leaf(phone, func(p *Phone) *string { return &p.Number }), 32, checkPhone)
		email := elem(elem(a, func(a *Address) **Online { return &a.Online }), func(o *Online) **Email { return &o.Email })
		add(base+"/Online/Email/@Address", flat+"_Online_Email", leaf(email, func(e *Email) *string { return &e.Address }), 254, checkEmail)
	}

	// Payment card (notes 10–17, 53).
	card := elem(elem(ecom, func(e *Ecom) **Payment { return &e.Payment }), func(p *Payment) **Card { return &p.Card })
	const cp = "/Ecom/Payment/Card"
	add(cp+"/@Name", "Ecom_Payment_Card_Name", leaf(card, func(c *Card) *string { return &c.Name }), 128, checkText)
	add(cp+"/@Type", "Ecom_Payment_Card_Type", leaf(card, func(c *Card) *string { return &c.Type }), 64, checkCardType)
	add(cp+"/@Number", "Ecom_Payment_Card_Number", leaf(card, func(c *Card) *string { return (*string)(&c.Number) }), 0, nil)
	secret()
	add(cp+"/@Verification", "Ecom_Payment_Card_Verification", leaf(card, func(c *Card) *string { return (*string)(&c.Verification) }), 0, checkDigits(3, 4))
	secret()
	add(cp+"/@Issuer", "Ecom_Payment_Card_IssueNumber", leaf(card, func(c *Card) *string { return &c.Issuer }), 0, checkDigits(1, 2))
	addDate := func(path, flat string, d ref[Date], partsSensitive bool) {
		for _, part := range []struct {
			attr string
			f    func(*Date) *string
		}{
			{"Day", func(d *Date) *string { return &d.Day }},
			{"Month", func(d *Date) *string { return &d.Month }},
			{"Year", func(d *Date) *string { return &d.Year }},
		} {
			f := ""
			if flat != "" {
				f = flat + "_" + part.attr
			}
			add(path+"/@"+part.attr, f, leaf(d, part.f), 0, nil)
			if partsSensitive {
				secret()
			}
		}
	}
	addDate(cp+"/ExpDate", "Ecom_Payment_Card_ExpDate", elem(card, func(c *Card) **Date { return &c.ExpDate }), false)
	addDate(cp+"/ValidDate", "Ecom_Payment_Card_ValidFrom", elem(card, func(c *Card) **Date { return &c.ValidDate }), false)
	add(cp+"/@Protocols", "Ecom_Payment_Card_Protocol", leaf(card, func(c *Card) *string { return &c.Protocols }), 128, checkProtocols)

	// Loyalty card.
	loyalty := elem(ecom, func(e *Ecom) **Loyalty { return &e.Loyalty })
	const lp = "/Ecom/Loyalty"
	add(lp+"/@Name", "Ecom_Loyalty_Card_Name", leaf(loyalty, func(l *Loyalty) *string { return &l.Name }), 128, checkText)
	add(lp+"/@Type", "Ecom_Loyalty_Card_Type", leaf(loyalty, func(l *Loyalty) *string { return &l.Type }), 64, checkText)
	add(lp+"/@Number", "Ecom_Loyalty_Card_Number", leaf(loyalty, func(l *Loyalty) *string { return (*string)(&l.Number) }), 64, checkToken)
	secret()
	add(lp+"/@Verification", "Ecom_Loyalty_Card_Verification", leaf(loyalty, func(l *Loyalty) *string { return (*string)(&l.Verification) }), 16, checkToken)
	secret()
	addDate(lp+"/ExpDate", "Ecom_Loyalty_Card_ExpDate", elem(loyalty, func(l *Loyalty) **Date { return &l.ExpDate }), false)
	addDate(lp+"/ValidDate", "Ecom_Loyalty_Card_ValidFrom", elem(loyalty, func(l *Loyalty) **Date { return &l.ValidDate }), false)

	// User (notes 19, 33, 55) and the user data RFC 4112 has a slot for.
	user := elem(ecom, func(e *Ecom) **User { return &e.User })
	add("/Ecom/User/UserID", "Ecom_User_ID", textOf(user, func(u *User) **Text { return &u.UserID }), 128, checkText)
	add("/Ecom/User/Password", "Ecom_User_Password", secretTextOf(user, func(u *User) **SecretText { return &u.Password }), 128, checkText)
	secret()
	add("/Ecom/User/@CertificateURL", "Ecom_User_Certificate_URL", leaf(user, func(u *User) *string { return &u.CertificateURL }), 2048, checkURI)
	add("/Ecom/User/@DataCountry", "Ecom_UserData_Country", leaf(user, func(u *User) *string { return &u.DataCountry }), 0, checkCountry)
	add("/Ecom/User/@DataLanguage", "Ecom_UserData_Language", leaf(user, func(u *User) *string { return &u.DataLanguage }), 64, checkLanguage)

	// User data without an ECML slot: kx:UserData (notes 34, 36).
	userData := elem(root, func(p *Payload) **UserData { return &p.UserData })
	add("/kx:UserData/@Gender", "Ecom_UserData_Gender", leaf(userData, func(u *UserData) *string { return &u.Gender }), 0, checkGender)
	birth := elem(userData, func(u *UserData) **BirthDate { return &u.BirthDate })
	add("/kx:UserData/kx:BirthDate/@Day", "Ecom_UserData_BirthDate_Day", leaf(birth, func(b *BirthDate) *string { return (*string)(&b.Day) }), 0, nil)
	secret()
	add("/kx:UserData/kx:BirthDate/@Month", "Ecom_UserData_BirthDate_Month", leaf(birth, func(b *BirthDate) *string { return (*string)(&b.Month) }), 0, nil)
	secret()
	add("/kx:UserData/kx:BirthDate/@Year", "Ecom_UserData_BirthDate_Year", leaf(birth, func(b *BirthDate) *string { return (*string)(&b.Year) }), 0, nil)
	secret()
	add("/kx:UserData/@Preferences", "Ecom_UserData_Preferences", leaf(userData, func(u *UserData) *string { return &u.Preferences }), 500, checkText)

	// Wallet, device (notes 21, 35, 37, 38) and completion (22).
	device := elem(root, func(p *Payload) **Device { return &p.Device })
	add("/kx:Device/@ID", "Ecom_Device_ID", leaf(device, func(d *Device) *string { return &d.ID }), 128, checkASCII)
	add("/kx:Device/@Type", "Ecom_Device_Type", leaf(device, func(d *Device) *string { return &d.Type }), 64, checkText)
	fs = append(fs, field{
		path: "/Ecom/TransactionComplete", flat: "Ecom_TransactionComplete",
		get: func(p *Payload) string {
			if p.Ecom != nil && p.Ecom.TransactionComplete != nil {
				return "true"
			}
			return ""
		},
		set: setTransactionComplete,
	})

	// Transaction, merchant→consumer (notes 25–31).
	tx := elem(ecom, func(e *Ecom) **Transaction { return &e.Transaction })
	const tp = "/Ecom/Transaction"
	txID := elem(tx, func(t *Transaction) **TransactionID { return &t.ID })
	txDate := elem(tx, func(t *Transaction) **TransactionDate { return &t.Date })
	add(tp+"/Id/@Value", "Ecom_Transaction_ID", leaf(txID, func(i *TransactionID) *string { return &i.Value }), 128, checkASCII)
	add(tp+"/Inquiry", "Ecom_Transaction_Inquiry", textOf(tx, func(t *Transaction) **Text { return &t.Inquiry }), 2048, checkURI)
	add(tp+"/@Amount", "Ecom_Transaction_Amount", leaf(tx, func(t *Transaction) *string { return &t.Amount }), 0, nil)
	add(tp+"/@Currency", "Ecom_Transaction_CurrencyCode", leaf(tx, func(t *Transaction) *string { return &t.Currency }), 0, checkCurrency)
	add(tp+"/Date/@Value", "Ecom_Transaction_Date", leaf(txDate, func(d *TransactionDate) *string { return &d.Value }), 128, checkText)
	add(tp+"/@Type", "Ecom_Transaction_Type", leaf(tx, func(t *Transaction) *string { return &t.Type }), 0, checkEnum("debit", "credit"))
	add(tp+"/Signature", "Ecom_Transaction_Signature", textOf(tx, func(t *Transaction) **Text { return &t.Signature }), 4096, checkBase64)

	// Merchant→processor (ISO 8583; notes 39–51).
	merchant := elem(ecom, func(e *Ecom) **Merchant { return &e.MerchantInfo })
	terminal := elem(merchant, func(m *Merchant) **Terminal { return &m.Terminal })
	add("/Ecom/Merchant/@id", "Ecom_Merchant_ID", leaf(merchant, func(m *Merchant) *string { return &m.ID }), 1024, checkASCII)
	add("/Ecom/Merchant/Terminal/@id", "Ecom_Merchant_Terminal_ID", leaf(terminal, func(t *Terminal) *string { return &t.ID }), 16, checkASCII)
	add("/Ecom/Merchant/Terminal/@Data", "Ecom_Merchant_Terminal_Data", leaf(terminal, func(t *Terminal) *string { return &t.Data }), 255, checkText)
	code := elem(tx, func(t *Transaction) **Code { return &t.Code })
	add(tp+"/Code/@Processing", "Ecom_Transaction_ProcessingCode", leaf(code, func(c *Code) *string { return &c.Processing }), 0, checkDigits(6, 6))
	add(tp+"/Code/@Approval", "Ecom_Transaction_ApprovalCode", leaf(code, func(c *Code) *string { return &c.Approval }), 12, checkASCII)
	add(tp+"/Code/@Retrieval", "Ecom_Transaction_RetrievalCode", leaf(code, func(c *Code) *string { return &c.Retrieval }), 128, checkASCII)
	add(tp+"/Code/@Action", "Ecom_Transaction_ActionCode", leaf(code, func(c *Code) *string { return &c.Action }), 13, checkASCII)
	add(tp+"/Code/@Reason", "Ecom_Transaction_ReasonCode", leaf(code, func(c *Code) *string { return &c.Reason }), 4, checkASCII)
	add(tp+"/Code/@POS", "Ecom_Transaction_POSCode", leaf(code, func(c *Code) *string { return &c.POS }), 12, checkASCII)
	add(tp+"/Id/@Reference", "Ecom_Transaction_Reference_ID", leaf(txID, func(i *TransactionID) *string { return &i.Reference }), 12, checkASCII)
	add(tp+"/Id/@Acquire", "Ecom_Transaction_Acquire_ID", leaf(txID, func(i *TransactionID) *string { return &i.Acquire }), 13, checkASCII)
	add(tp+"/Id/@Forward", "Ecom_Transaction_Forward_ID", leaf(txID, func(i *TransactionID) *string { return &i.Forward }), 13, checkASCII)
	add(tp+"/Id/@CID", "Ecom_Transaction_CID", leaf(txID, func(i *TransactionID) *string { return &i.CID }), 8, checkASCII)
	data := elem(tx, func(t *Transaction) **Data { return &t.Data })
	add(tp+"/Data/Trace", "Ecom_Transaction_Trace_Audit", textOf(data, func(d *Data) **Text { return &d.Trace }), 0, checkDigits(1, 6))
	add(tp+"/Data/PrivateUse", "Ecom_Transaction_PrivateUseData", textOf(data, func(d *Data) **Text { return &d.PrivateUse }), 999, checkText)
	add(tp+"/Data/Response", "Ecom_Transaction_ResponseData", textOf(data, func(d *Data) **Text { return &d.Response }), 99, checkText)
	add(tp+"/Data/AAV", "Ecom_Transaction_AAV", textOf(data, func(d *Data) **Text { return &d.AAV }), 64, checkToken)
	add(tp+"/Data/Track1", "Ecom_Transaction_Track1", secretTextOf(data, func(d *Data) **SecretText { return &d.Track1 }), 79, checkASCII)
	secret()
	add(tp+"/Data/Track2", "Ecom_Transaction_Track2", secretTextOf(data, func(d *Data) **SecretText { return &d.Track2 }), 40, checkASCII)
	secret()
	effective := elem(txDate, func(d *TransactionDate) **Date { return &d.Effective })
	settle := elem(txDate, func(d *TransactionDate) **Date { return &d.Settle })
	capture := elem(txDate, func(d *TransactionDate) **Date { return &d.Capture })
	fs = append(fs,
		compactDate(tp+"/Date/Effective", "Ecom_Transaction_Effective_Date", effective, true),
		compactDate(tp+"/Date/Settle", "Ecom_Transaction_Settle_Date", settle, false),
		compactDate(tp+"/Date/Capture", "Ecom_Transaction_Capture_Date", capture, false),
	)
	// The parts of these dates, for Validate; they have no flat name of
	// their own.
	addDate(tp+"/Date/Effective", "", effective, false)
	addDate(tp+"/Date/Settle", "", settle, false)
	addDate(tp+"/Date/Capture", "", capture, false)

	// Extension elements RFC 4112 has no flat name for: KECIS names them
	// with its own prefix, ExtFlatPrefix (KECIS §14.7).
	transfer := elem(root, func(p *Payload) **Transfer { return &p.Transfer })
	terms := elem(transfer, func(t *Transfer) **Terms { return &t.Terms })
	add("/kx:Transfer/@Purpose", "KECIS_Transfer_Purpose", leaf(transfer, func(t *Transfer) *string { return &t.Purpose }), 0, checkEnum(PurposePhishingPrevention, PurposeMutualAgreement))
	add("/kx:Transfer/kx:Terms/@Principal", "KECIS_Transfer_Terms_Principal", leaf(terms, func(t *Terms) *string { return &t.Principal }), 0, nil)
	add("/kx:Transfer/kx:Terms/@Currency", "KECIS_Transfer_Terms_Currency", leaf(terms, func(t *Terms) *string { return &t.Currency }), 0, checkCurrency)
	add("/kx:Transfer/kx:Terms/@RepaymentDate", "KECIS_Transfer_Terms_RepaymentDate", leaf(terms, func(t *Terms) *string { return &t.RepaymentDate }), 0, checkISODate)
	add("/kx:Transfer/kx:Terms/@InterestRate", "KECIS_Transfer_Terms_InterestRate", leaf(terms, func(t *Terms) *string { return &t.InterestRate }), 0, checkRate)
	add("/kx:Transfer/kx:Terms", "KECIS_Transfer_Terms", leaf(terms, func(t *Terms) *string { return &t.Text }), 2000, checkMultiline)
	aa := elem(root, func(p *Payload) **AmountAuth { return &p.AmountAuth })
	add("/kx:AmountAuth/@SessionID", "KECIS_AmountAuth_SessionID", leaf(aa, func(a *AmountAuth) *string { return &a.SessionID }), 64, checkSessionID)
	add("/kx:AmountAuth/@Ceiling", "KECIS_AmountAuth_Ceiling", leaf(aa, func(a *AmountAuth) *string { return &a.Ceiling }), 0, nil)
	add("/kx:AmountAuth/@Currency", "KECIS_AmountAuth_Currency", leaf(aa, func(a *AmountAuth) *string { return &a.Currency }), 0, checkCurrency)
	add("/kx:AmountAuth/kx:Challenge", "KECIS_AmountAuth_Challenge", leaf(aa, func(a *AmountAuth) *string { return (*string)(&a.Challenge) }), 0, nil)
	secret()
	vc := elem(root, func(p *Payload) **VirtualCard { return &p.VirtualCard })
	add("/kx:VirtualCard/@Type", "KECIS_VirtualCard_Type", leaf(vc, func(v *VirtualCard) *string { return &v.Type }), 0,
		checkEnum(VirtualCardCredit, VirtualCardCheck, VirtualCardPrepaid, VirtualCardOther))
	add("/kx:VirtualCard/kx:Number", "KECIS_VirtualCard_Number", leaf(vc, func(v *VirtualCard) *string { return (*string)(&v.Number) }), 0, nil)
	secret()
	addDate("/kx:VirtualCard/kx:ExpDate", "", elem(vc, func(v *VirtualCard) **Date { return &v.ExpDate }), false)
	escrow := elem(root, func(p *Payload) **Escrow { return &p.Escrow })
	add("/kx:Escrow/@State", "KECIS_Escrow_State", leaf(escrow, func(e *Escrow) *string { return &e.State }), 0, checkEnum(EscrowStates...))
	add("/kx:Escrow/@Carrier", "KECIS_Escrow_Carrier", leaf(escrow, func(e *Escrow) *string { return &e.Carrier }), 64, checkText)
	add("/kx:Escrow/@Tracking", "KECIS_Escrow_Tracking", leaf(escrow, func(e *Escrow) *string { return &e.Tracking }), 64, checkASCII)
	add("/kx:Escrow/@ConfirmBy", "KECIS_Escrow_ConfirmBy", leaf(escrow, func(e *Escrow) *string { return &e.ConfirmBy }), 0, checkDateTime)
	add("/kx:Escrow/@Reason", "KECIS_Escrow_Reason", leaf(escrow, func(e *Escrow) *string { return &e.Reason }), EscrowReasonMax, checkText)
	add("/kx:Escrow/@Auto", "KECIS_Escrow_Auto", leaf(escrow, func(e *Escrow) *string { return &e.Auto }), 0, checkEnum("true", "false"))
	ca := elem(root, func(p *Payload) **CardAuth { return &p.CardAuth })
	add("/kx:CardAuth/@Acquirer", "KECIS_CardAuth_Acquirer", leaf(ca, func(c *CardAuth) *string { return &c.Acquirer }), 1024, checkURI)
	add("/kx:CardAuth/@VirtualCard", "KECIS_CardAuth_VirtualCard", leaf(ca, func(c *CardAuth) *string { return &c.VirtualCard }), 0, checkEnum("true", "false"))
	add("/kx:CardAuth/@Use", "KECIS_CardAuth_Use", leaf(ca, func(c *CardAuth) *string { return &c.Use }), 0, checkEnum(CardAuthSingleUse, CardAuthMultiUse))
	add("/kx:CardAuth/@MerchantLock", "KECIS_CardAuth_MerchantLock", leaf(ca, func(c *CardAuth) *string { return &c.MerchantLock }), 0, checkEnum("true", "false"))
	add("/kx:CardAuth/@NotOnOrAfter", "KECIS_CardAuth_NotOnOrAfter", leaf(ca, func(c *CardAuth) *string { return &c.NotOnOrAfter }), 0, checkDateTime)
	add("/kx:OneTimeCode", "KECIS_OneTimeCode", leaf(root, func(p *Payload) *string { return (*string)(&p.OneTimeCode) }), 0, checkDigits(4, 10))
	secret()
	keyIn := elem(root, func(p *Payload) **KeyIn { return &p.KeyIn })
	add("/kx:KeyIn/@PasswordPrefix", "KECIS_KeyIn_PasswordPrefix", leaf(keyIn, func(k *KeyIn) *string { return (*string)(&k.PasswordPrefix) }), 0, checkDigits(2, 2))
	secret()
	add("/kx:KeyIn/@BirthDate", "KECIS_KeyIn_BirthDate", leaf(keyIn, func(k *KeyIn) *string { return (*string)(&k.BirthDate) }), 0, checkYYMMDD)
	secret()
	add("/kx:KeyIn/@BusinessNumber", "KECIS_KeyIn_BusinessNumber", leaf(keyIn, func(k *KeyIn) *string { return (*string)(&k.BusinessNumber) }), 0, checkBusinessNumber)
	secret()

	// Bank accounts are a list: their rows have no accessor.
	fs = append(fs,
		field{path: "/kx:BankAccount/@BankCode", check: checkDigits(3, 3)},
		field{path: "/kx:BankAccount/@Role", check: checkEnum("remitter", "payee", "settlement")},
		field{path: "/kx:BankAccount/kx:Holder", max: 64, check: checkText},
		field{path: "/kx:BankAccount/kx:AccountNumber", sensitive: true, check: checkAccountNumber},
	)
	return fs
}

// compactDate is the row of an ISO 8583 compact date flat field (RFC 4112
// notes 44, 48, 49), which RFC 4112's XML spreads over [Day Month Year]:
// Ecom_Transaction_Effective_Date is YYMM (ISO 8583:1993 field 13) and goes
// to Year (as 20YY, note 16's four digits) and Month; the settlement and
// capture dates are MMDD (fields 15, 17) and go to Month and Day. FromForm
// refuses any other shape. Form writes two-digit parts, padding a one-digit
// one with a zero and keeping the last two digits of a four-digit year.
func compactDate(path, flat string, d ref[Date], yymm bool) field {
	return field{
		path: path, flat: flat,
		get: func(p *Payload) string {
			dd := d(p, false)
			if dd == nil {
				return ""
			}
			if yymm {
				if dd.Year == "" && dd.Month == "" {
					return ""
				}
				y := dd.Year
				if len(y) == 4 {
					y = y[2:]
				}
				return pad2(y) + pad2(dd.Month)
			}
			if dd.Month == "" && dd.Day == "" {
				return ""
			}
			return pad2(dd.Month) + pad2(dd.Day)
		},
		set: func(p *Payload, v string) error {
			if len(v) != 4 || !AllDigits(v) {
				if yymm {
					return errCompactDate("YYMM")
				}
				return errCompactDate("MMDD")
			}
			dd := d(p, true)
			if yymm {
				dd.Year, dd.Month = "20"+v[:2], v[2:]
			} else {
				dd.Month, dd.Day = v[:2], v[2:]
			}
			return nil
		},
	}
}

type errCompactDate string

func (e errCompactDate) Error() string { return "must be four digits, " + string(e) + " (ISO 8583)" }

func pad2(s string) string {
	if len(s) == 1 {
		return "0" + s
	}
	return s
}

// setTransactionComplete sets the Ecom_TransactionComplete flag (note 22):
// the field's presence says the transaction is complete, whatever its
// value, except that a value saying the opposite ("false", "0", "no",
// "off") is refused rather than read as true.
func setTransactionComplete(p *Payload, v string) error {
	switch v {
	case "false", "False", "FALSE", "0", "no", "No", "NO", "off", "Off", "OFF":
		return errFlag{}
	}
	if p.Ecom == nil {
		p.Ecom = &Ecom{}
	}
	if p.Ecom.TransactionComplete == nil {
		p.Ecom.TransactionComplete = &TransactionComplete{}
	}
	return nil
}

type errFlag struct{}

func (errFlag) Error() string {
	return "is a flag: its presence means the transaction is complete (RFC 4112 note 22); leave it out instead"
}

// FlatNames returns the ECML flat names FromForm and Form know, sorted.
func FlatNames() []string {
	return slices.Sorted(maps.Keys(fieldByFlat))
}

// FlatNamePath returns the XML path (from the payload container) that a flat
// name maps to; for the compact transaction dates it is the date element.
func FlatNamePath(name string) (string, bool) {
	f, ok := fieldByFlat[name]
	if !ok {
		return "", false
	}
	return f.path, true
}

// SensitivePaths lists, sorted, the paths (from the payload container, list
// indexes left out) of everything KECIS treats as sensitive: the elements
// KECIS §8.1 requires to be encrypted (which [SensitiveElements] returns),
// and the values inside them that are [PAN] or [Secret] in the model. Every
// other field is public.
func SensitivePaths() []string {
	out := slices.Clone(sensitiveElements)
	for _, f := range fields {
		if f.sensitive {
			out = append(out, f.path)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}
