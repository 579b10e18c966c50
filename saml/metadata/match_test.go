package metadata

import (
	"crypto/x509"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

var (
	matchNow  = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	validCert = &x509.Certificate{NotBefore: matchNow.AddDate(-1, 0, 0), NotAfter: matchNow.AddDate(1, 0, 0)}
	oldCert   = &x509.Certificate{NotBefore: matchNow.AddDate(-2, 0, 0), NotAfter: matchNow.AddDate(0, 0, -1)}
)

const svcApprove = "urn:kecis:service:card:approve"

func bins(t *testing.T, s string) BINList {
	t.Helper()
	l, err := ParseBINList(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func provider(id string, role Role, svc OfferedService, enc ...*x509.Certificate) *EntityDescriptor {
	if enc == nil {
		enc = []*x509.Certificate{validCert}
	}
	ed := &EntityDescriptor{EntityID: id, Roles: []Role{role}, Services: []OfferedService{svc}}
	for _, c := range enc {
		ed.Keys = append(ed.Keys, KeyDescriptor{Use: UseEncryption, Certificate: c})
	}
	return ed
}

func TestServes(t *testing.T) {
	krw := func(n int64) ecml.Money { return ecml.Money{Minor: n, Currency: "KRW"} }
	merchant := &EntityDescriptor{EntityID: "https://shop.example", Roles: []Role{RoleMerchant}}
	pg := &EntityDescriptor{EntityID: "https://pg.example", Roles: []Role{RolePG}}
	issuer := provider("https://issuer.example", RoleIssuer, OfferedService{
		Service: svcApprove, BINs: bins(t, "404143 411111-411199 52"),
		Limits:  []Limit{{Currency: "KRW", Min: 100, Max: 1_000_000}},
		Callers: []Role{RolePG}, CallerEntities: []string{"https://pg.example"},
	})
	bank := provider("https://bank.example", RoleBank, OfferedService{Service: "urn:kecis:service:transfer:credit", BankCodes: []string{"088"}, Callers: []Role{RoleBank}})
	expired := provider("https://old.example", RoleIssuer, OfferedService{Service: svcApprove, Callers: []Role{RolePG}}, oldCert)
	rollover := provider("https://roll.example", RoleIssuer, OfferedService{Service: svcApprove, Callers: []Role{RolePG}}, oldCert, validCert)

	for _, tc := range []struct {
		name string
		ed   *EntityDescriptor
		q    Query
		spec int
		why  Refusal
	}{
		{"6-digit BIN", issuer, Query{Service: svcApprove, CardBIN: "40414312"}, 6, ""},
		{"range", issuer, Query{Service: svcApprove, CardBIN: "411150"}, 6, ""},
		{"range end inclusive", issuer, Query{Service: svcApprove, CardBIN: "411199"}, 6, ""},
		{"past range end", issuer, Query{Service: svcApprove, CardBIN: "411200"}, 0, RefusedBIN},
		{"2-digit prefix", issuer, Query{Service: svcApprove, CardBIN: "521234"}, 2, ""},
		{"BIN shorter than range", issuer, Query{Service: svcApprove, CardBIN: "4041"}, 0, RefusedBIN},
		{"no BIN in query", issuer, Query{Service: svcApprove}, 0, ""},
		{"other service", issuer, Query{Service: "urn:kecis:service:card:refund", CardBIN: "404143"}, 0, RefusedService},
		{"role required", issuer, Query{Service: svcApprove, CardBIN: "404143", Role: RoleBank}, 0, RefusedRole},
		{"role held", issuer, Query{Service: svcApprove, CardBIN: "404143", Role: RoleIssuer}, 6, ""},
		{"caller admitted", issuer, Query{Service: svcApprove, Caller: pg}, 0, ""},
		{"caller role refused", issuer, Query{Service: svcApprove, Caller: merchant}, 0, RefusedCaller},
		{"caller not contracted", issuer, Query{Service: svcApprove, Caller: &EntityDescriptor{EntityID: "https://other-pg.example", Roles: []Role{RolePG}}}, 0, RefusedCaller},
		{"amount inside", issuer, Query{Service: svcApprove, Amount: krw(100)}, 0, ""},
		{"amount below", issuer, Query{Service: svcApprove, Amount: krw(99)}, 0, RefusedAmount},
		{"amount above", issuer, Query{Service: svcApprove, Amount: krw(1_000_001)}, 0, RefusedAmount},
		{"currency without limit", issuer, Query{Service: svcApprove, Amount: ecml.Money{Minor: 1000, Currency: "USD"}}, 0, RefusedAmount},
		{"bank code", bank, Query{Service: "urn:kecis:service:transfer:credit", BankCode: "088"}, 0, ""},
		{"other bank code", bank, Query{Service: "urn:kecis:service:transfer:credit", BankCode: "004"}, 0, RefusedBank},
		{"expired encryption key", expired, Query{Service: svcApprove, At: matchNow}, 0, RefusedNoKey},
		{"expired key, no time asked", expired, Query{Service: svcApprove}, 0, ""},
		{"rollover keeps the valid key", rollover, Query{Service: svcApprove, At: matchNow}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, spec, why := tc.ed.Serves(tc.q)
			if why != tc.why || spec != tc.spec {
				t.Fatalf("Serves = (spec %d, %q), want (spec %d, %q)", spec, why, tc.spec, tc.why)
			}
			if (svc != nil) != (why == "") {
				t.Fatalf("service %v with refusal %q", svc, why)
			}
		})
	}
}

func TestChoose(t *testing.T) {
	issuerA := provider("https://a.example", RoleIssuer, OfferedService{Service: svcApprove, BINs: bins(t, "404143"), Callers: []Role{RolePG}})
	issuerA8 := provider("https://a8.example", RoleIssuer, OfferedService{Service: svcApprove, BINs: bins(t, "40414399"), Callers: []Role{RolePG}})
	issuerB := provider("https://b.example", RoleIssuer, OfferedService{Service: svcApprove, BINs: bins(t, "404100-404199"), Callers: []Role{RolePG}})
	wide := provider("https://wide.example", RoleIssuer, OfferedService{Service: svcApprove, BINs: bins(t, "4"), Callers: []Role{RolePG}})
	pgAll := provider("https://pg.example", RolePG, OfferedService{Service: svcApprove, Callers: []Role{RoleMerchant}})
	pgAll2 := provider("https://pg2.example", RolePG, OfferedService{Service: svcApprove, Callers: []Role{RoleMerchant}})
	stale := provider("https://stale.example", RoleIssuer, OfferedService{Service: svcApprove, BINs: bins(t, "40414399"), Callers: []Role{RolePG}}, oldCert)
	// A merchant that claims an issuer's BIN without the issuer role.
	rogue := provider("https://rogue.example", RoleMerchant, OfferedService{Service: svcApprove, BINs: bins(t, "40414312"), Callers: []Role{RolePG}})

	for _, tc := range []struct {
		name string
		eds  []*EntityDescriptor
		q    Query
		want string   // entityID
		amb  []string // ambiguous: these
	}{
		{"only one", []*EntityDescriptor{issuerA}, Query{Service: svcApprove, CardBIN: "40414312"}, "https://a.example", nil},
		{"longer prefix wins", []*EntityDescriptor{wide, issuerA, issuerA8}, Query{Service: svcApprove, CardBIN: "40414399"}, "https://a8.example", nil},
		{"6 over 1", []*EntityDescriptor{wide, issuerA}, Query{Service: svcApprove, CardBIN: "40414312"}, "https://a.example", nil},
		{"same length is a tie", []*EntityDescriptor{issuerA, issuerB}, Query{Service: svcApprove, CardBIN: "40414312"}, "", []string{"https://a.example", "https://b.example"}},
		{"tie regardless of order", []*EntityDescriptor{issuerB, issuerA}, Query{Service: svcApprove, CardBIN: "40414312"}, "", []string{"https://b.example", "https://a.example"}},
		{"outside every range", []*EntityDescriptor{issuerA, issuerB}, Query{Service: svcApprove, CardBIN: "52000000"}, "", nil},
		{"no BIN list beats nothing", []*EntityDescriptor{pgAll, issuerA}, Query{Service: svcApprove, CardBIN: "52000000"}, "https://pg.example", nil},
		{"BIN list beats no list", []*EntityDescriptor{pgAll, issuerA}, Query{Service: svcApprove, CardBIN: "40414312"}, "https://a.example", nil},
		{"two without lists tie", []*EntityDescriptor{pgAll, pgAll2}, Query{Service: svcApprove, CardBIN: "52000000"}, "", []string{"https://pg.example", "https://pg2.example"}},
		{"role filters the PG", []*EntityDescriptor{pgAll, issuerA}, Query{Service: svcApprove, CardBIN: "52000000", Role: RoleIssuer}, "", nil},
		{"caller filters the issuer", []*EntityDescriptor{pgAll, issuerA}, Query{Service: svcApprove, CardBIN: "40414312", Caller: &EntityDescriptor{EntityID: "https://shop.example", Roles: []Role{RoleMerchant}}}, "https://pg.example", nil},
		{"expired key drops out", []*EntityDescriptor{issuerA, stale}, Query{Service: svcApprove, CardBIN: "40414399", At: matchNow}, "https://a.example", nil},
		{"rogue without the role", []*EntityDescriptor{issuerA, rogue}, Query{Service: svcApprove, CardBIN: "40414312", Role: RoleIssuer}, "https://a.example", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Choose(tc.eds, tc.q)
			var amb *AmbiguousError
			switch {
			case tc.want != "":
				if err != nil || got.EntityID != tc.want {
					t.Fatalf("Choose = %v, %v; want %s", got, err, tc.want)
				}
			case tc.amb != nil:
				if !errors.As(err, &amb) || !slices.Equal(amb.EntityIDs, tc.amb) {
					t.Fatalf("Choose = %v, %v; want ambiguous %v", got, err, tc.amb)
				}
			default:
				if !errors.Is(err, ErrNoProvider) {
					t.Fatalf("Choose = %v, %v; want ErrNoProvider", got, err)
				}
			}
		})
	}
}

func TestRecipientRole(t *testing.T) {
	if RecipientRole(Query{CardBIN: "404143"}) != RoleIssuer || RecipientRole(Query{BankCode: "088"}) != RoleBank || RecipientRole(Query{}) != "" {
		t.Fatal("RecipientRole")
	}
}

func TestAdmitsCaller(t *testing.T) {
	open := OfferedService{Callers: []Role{RoleMerchant, RolePG}}
	contracted := OfferedService{Callers: []Role{RolePG}, CallerEntities: []string{"https://pg.example"}}
	none := OfferedService{}
	for _, tc := range []struct {
		s     OfferedService
		id    string
		roles []Role
		want  bool
	}{
		{open, "https://shop.example", []Role{RoleMerchant}, true},
		{open, "https://t.example", []Role{RoleTelecom}, false},
		{open, "https://x.example", []Role{RoleTelecom, RolePG}, true},
		{contracted, "https://pg.example", []Role{RolePG}, true},
		{contracted, "https://pg2.example", []Role{RolePG}, false},
		{contracted, "https://pg.example", []Role{RoleMerchant}, false},
		{none, "https://pg.example", []Role{RolePG}, false}, // undeclared: nobody
	} {
		if got := tc.s.AdmitsCaller(tc.id, tc.roles); got != tc.want {
			t.Errorf("%+v AdmitsCaller(%s, %v) = %v", tc.s, tc.id, tc.roles, got)
		}
	}
}

func TestAuthorizeCall(t *testing.T) {
	issuer := provider("https://issuer.example", RoleIssuer, OfferedService{Service: svcApprove, Callers: []Role{RolePG}})
	pg := &EntityDescriptor{EntityID: "https://pg.example", Roles: []Role{RolePG}}
	shop := &EntityDescriptor{EntityID: "https://shop.example", Roles: []Role{RoleMerchant}}
	if err := AuthorizeCall(issuer, pg, svcApprove); err != nil {
		t.Fatalf("the PG is refused: %v", err)
	}
	for _, tc := range []struct {
		caller  *EntityDescriptor
		service string
		want    *saml.Error
	}{
		{shop, svcApprove, saml.ErrCallerDenied},
		{nil, svcApprove, saml.ErrCallerDenied},
		{pg, "urn:kecis:service:card:refund", saml.ErrUnknownService},
	} {
		err := AuthorizeCall(issuer, tc.caller, tc.service)
		if !errors.Is(err, tc.want) {
			t.Errorf("AuthorizeCall(%v, %s) = %v, want %v", tc.caller, tc.service, err, tc.want)
		}
		if e := saml.AsError(err); e.StatusValue().SubCode != tc.want.StatusValue().SubCode {
			t.Errorf("status %+v", e.StatusValue())
		}
	}
	if Caller("https://hub.example", "https://shop.example") != "https://shop.example" || Caller("https://pg.example", "") != "https://pg.example" {
		t.Fatal("Caller")
	}
}
