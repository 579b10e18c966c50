package metadata

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/kecis/kecis/saml"
)

var diffNotAfter = time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)

// diffCert is a certificate that only its bytes and expiry tell apart.
func diffCert(raw string) *x509.Certificate {
	return &x509.Certificate{Raw: []byte(raw), NotAfter: diffNotAfter}
}

func diffFP(raw string) string {
	s := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(s[:])
}

func mustBINs(t *testing.T, s string) BINList {
	t.Helper()
	l, err := ParseBINList(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const (
	diffApprove = "urn:kecis:service:card:approve"
	diffRefund  = "urn:kecis:service:card:refund"
	diffNotify  = "urn:kecis:service:order:notify"
)

// diffMerchant is the active version of a merchant, as the tests start
// from.
func diffMerchant(t *testing.T) *EntityDescriptor {
	return &EntityDescriptor{
		EntityID: "https://shop.test/kecis", DisplayName: "Shop", Roles: []Role{RoleMerchant},
		Keys:    []KeyDescriptor{{Use: UseSigning, Certificate: diffCert("sig1")}, {Use: UseEncryption, Certificate: diffCert("enc1")}},
		TLSKeys: []KeyDescriptor{{Use: UseTLSClient, Certificate: diffCert("tls1")}},
		Endpoints: []Endpoint{
			{Service: AnyService, Binding: saml.BindingSOAP, Location: "https://shop.test/kecis/soap"},
			{Service: AnyService, Binding: saml.BindingSOAP, Location: "https://dr.shop.test/kecis/soap", Priority: 1},
		},
		Services: []OfferedService{
			{Service: diffNotify, Callers: []Role{RolePG}},
			{Service: diffRefund, Limits: []Limit{{Currency: "KRW", Min: 100, Max: 1000000}}, BINs: mustBINs(t, "404143"), Callers: []Role{RolePG}},
		},
	}
}

func clone(ed *EntityDescriptor) *EntityDescriptor {
	c := *ed
	c.Roles = slices.Clone(ed.Roles)
	c.Keys = slices.Clone(ed.Keys)
	c.TLSKeys = slices.Clone(ed.TLSKeys)
	c.Endpoints = slices.Clone(ed.Endpoints)
	c.ContactPersons = slices.Clone(ed.ContactPersons)
	c.Services = make([]OfferedService, len(ed.Services))
	for i, s := range ed.Services {
		s.Limits = slices.Clone(s.Limits)
		s.BINs = slices.Clone(s.BINs)
		s.BankCodes = slices.Clone(s.BankCodes)
		s.Callers = slices.Clone(s.Callers)
		s.CallerEntities = slices.Clone(s.CallerEntities)
		c.Services[i] = s
	}
	return &c
}

func TestCompare(t *testing.T) {
	org := &crewjam.Organization{
		OrganizationNames:        []crewjam.LocalizedName{{Lang: "en", Value: "Shop Ltd"}},
		OrganizationDisplayNames: []crewjam.LocalizedName{{Lang: "en", Value: "Shop"}},
		OrganizationURLs:         []crewjam.LocalizedURI{{Lang: "en", Value: "https://shop.test/"}},
	}
	for _, c := range []struct {
		name   string
		change func(ed *EntityDescriptor)
		want   []string // rendered lines, in order
		trust  bool
		roles  []Role
		svcs   []string
	}{
		{name: "nothing", change: func(*EntityDescriptor) {}},
		{name: "document attributes the hub replaces", change: func(ed *EntityDescriptor) {
			ed.ID, ed.ValidUntil, ed.CacheDuration = "_x", diffNotAfter, time.Hour
		}},
		{name: "order of roles, services, BINs, limits and callers", change: func(ed *EntityDescriptor) {
			ed.Roles = []Role{RoleMerchant, RoleMerchant}
			ed.Services[0], ed.Services[1] = ed.Services[1], ed.Services[0]
			ed.Services[0].BINs = mustBINs(t, "404143 404143")
		}},
		{name: "finding 1: issuer role, card:approve with a BIN range, an endpoint", change: func(ed *EntityDescriptor) {
			ed.Roles = append(ed.Roles, RoleIssuer)
			ed.Services = append(ed.Services, OfferedService{Service: diffApprove, BINs: mustBINs(t, "404143 411111-411199"),
				Limits: []Limit{{Currency: "KRW", Min: 100, Max: 5000000}}, Callers: []Role{RolePG, RoleMerchant}})
			ed.Endpoints = append(ed.Endpoints, Endpoint{Service: diffApprove, Binding: saml.BindingSOAP, Location: "https://evil.test/approve"})
		}, trust: true, roles: []Role{RoleIssuer}, svcs: []string{diffApprove}, want: []string{
			"+ role issuer",
			"+ service urn:kecis:service:card:approve BINs 404143 411111-411199; limits KRW 100-5000000; callers merchant pg",
			"+ endpoint urn:kecis:service:card:approve soap https://evil.test/approve priority 0",
		}},
		{name: "role removed", change: func(ed *EntityDescriptor) { ed.Roles = []Role{RolePG} },
			trust: true, roles: []Role{RolePG}, want: []string{"+ role pg", "- role merchant"}},
		{name: "service removed", change: func(ed *EntityDescriptor) { ed.Services = ed.Services[:1] },
			trust: true, want: []string{"- service urn:kecis:service:card:refund"}},
		{name: "BIN range widened", change: func(ed *EntityDescriptor) { ed.Services[1].BINs = mustBINs(t, "411111-411199 404143") },
			trust: true, want: []string{"~ urn:kecis:service:card:refund BINs 404143 → 404143 411111-411199"}},
		{name: "BIN list dropped (every BIN)", change: func(ed *EntityDescriptor) { ed.Services[1].BINs = nil },
			trust: true, want: []string{"~ urn:kecis:service:card:refund BINs 404143 → (any)"}},
		{name: "bank codes", change: func(ed *EntityDescriptor) { ed.Services[1].BankCodes = []string{"088", "004"} },
			trust: true, want: []string{"~ urn:kecis:service:card:refund bank codes (any) → 004 088"}},
		{name: "amount limit raised", change: func(ed *EntityDescriptor) { ed.Services[1].Limits[0].Max = 2000000 },
			trust: true, want: []string{"~ urn:kecis:service:card:refund limits KRW 100-1000000 → KRW 100-2000000"}},
		{name: "currency added", change: func(ed *EntityDescriptor) {
			ed.Services[1].Limits = append(ed.Services[1].Limits, Limit{Currency: "USD", Min: 100, Max: 50000})
		}, trust: true, want: []string{"~ urn:kecis:service:card:refund limits KRW 100-1000000 → KRW 100-1000000 USD 1.00-500.00"}},
		{name: "callers widened", change: func(ed *EntityDescriptor) { ed.Services[0].Callers = []Role{RolePG, RoleMerchant} },
			trust: true, want: []string{"~ urn:kecis:service:order:notify callers pg → merchant pg"}},
		{name: "caller entities narrowed", change: func(ed *EntityDescriptor) {
			ed.Services[0].CallerEntities = []string{"https://pg.test/kecis"}
		}, trust: true, want: []string{"~ urn:kecis:service:order:notify caller entities (any) → https://pg.test/kecis"}},
		{name: "entity id", change: func(ed *EntityDescriptor) { ed.EntityID = "https://other.test/kecis" },
			trust: true, want: []string{"~ entity id https://shop.test/kecis → https://other.test/kecis"}},
		{name: "key rollover", change: func(ed *EntityDescriptor) {
			ed.Keys = append(ed.Keys, KeyDescriptor{Use: UseSigning, Certificate: diffCert("sig2")})
			ed.TLSKeys = []KeyDescriptor{{Use: UseTLSClient, Certificate: diffCert("tls2")}}
		}, want: []string{
			"+ key signing sha256 " + diffFP("sig2") + " until 2027-06-30",
			"+ key tls-client sha256 " + diffFP("tls2") + " until 2027-06-30",
			"- key tls-client sha256 " + diffFP("tls1") + " until 2027-06-30",
		}},
		{name: "endpoint moved, one added, one removed", change: func(ed *EntityDescriptor) {
			ed.Endpoints[0].Location = "https://new.shop.test/kecis/soap"
			ed.Endpoints[1] = Endpoint{Service: diffNotify, Binding: saml.BindingHTTPPOST, Location: "https://shop.test/notify"}
		}, want: []string{
			"~ endpoint * soap priority 0 https://shop.test/kecis/soap → https://new.shop.test/kecis/soap",
			"+ endpoint urn:kecis:service:order:notify post https://shop.test/notify priority 0",
			"- endpoint * soap https://dr.shop.test/kecis/soap priority 1",
		}},
		{name: "endpoint order", change: func(ed *EntityDescriptor) {
			ed.Endpoints[0], ed.Endpoints[1] = ed.Endpoints[1], ed.Endpoints[0]
		}, want: []string{"~ endpoint order"}},
		{name: "display name, organization, contacts", change: func(ed *EntityDescriptor) {
			ed.DisplayName = "Shop & Co"
			ed.Organization = org
			ed.ContactPersons = []ContactPerson{{Type: "technical", GivenName: "Kim", EmailAddresses: []string{"mailto:kim@shop.test"}}}
		}, want: []string{
			`~ display name "Shop" → "Shop & Co"`,
			`+ organization "Shop"`,
			`+ contact technical given name "Kim" email mailto:kim@shop.test`,
		}},
		{name: "a trust change and a rollover together", change: func(ed *EntityDescriptor) {
			ed.Keys[1].Certificate = diffCert("enc2")
			ed.Services[1].BINs = mustBINs(t, "4041")
		}, trust: true, want: []string{
			"~ urn:kecis:service:card:refund BINs 404143 → 4041",
			"+ key encryption sha256 " + diffFP("enc2") + " until 2027-06-30",
			"- key encryption sha256 " + diffFP("enc1") + " until 2027-06-30",
		}},
		{name: "a service listed twice", change: func(ed *EntityDescriptor) {
			ed.Services = append(ed.Services, ed.Services[0])
		}, trust: true, want: []string{"~ services (a service is listed more than once)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			old := diffMerchant(t)
			next := clone(old)
			c.change(next)
			d := Compare(old, next)
			if got := d.Lines(); !slices.Equal(got, c.want) {
				t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			if d.TrustChange() != c.trust {
				t.Errorf("TrustChange() = %v, want %v", d.TrustChange(), c.trust)
			}
			if d.Empty() != (len(c.want) == 0) {
				t.Errorf("Empty() = %v", d.Empty())
			}
			if !slices.Equal(d.AddedRoles, c.roles) || !slices.Equal(d.AddedServices, c.svcs) {
				t.Errorf("added roles %v services %v, want %v %v", d.AddedRoles, d.AddedServices, c.roles, c.svcs)
			}
			if len(d.Trust())+len(d.SelfService()) != len(d.Changes) {
				t.Errorf("Trust and SelfService do not partition the changes")
			}
			// Trust changes come first.
			for i := 1; i < len(d.Changes); i++ {
				if d.Changes[i].Trust && !d.Changes[i-1].Trust {
					t.Errorf("a trust change after a self-service one: %v", d.Lines())
				}
			}
		})
	}
}

// TestCompareFailsClosed changes every field of the descriptor and of an
// offered service, one at a time, by reflection: each is reported, and as
// a trust change unless it is one of the known self-service fields (or a
// document attribute the hub replaces). A field added to the types later
// is therefore a trust change until it is classified here and in Compare.
func TestCompareFailsClosed(t *testing.T) {
	selfService := []string{"DisplayName", "Keys", "TLSKeys", "Endpoints", "Organization", "ContactPersons"}
	ignored := []string{"ID", "ValidUntil", "CacheDuration"}
	edType := reflect.TypeOf(EntityDescriptor{})
	for i := 0; i < edType.NumField(); i++ {
		f := edType.Field(i)
		t.Run(f.Name, func(t *testing.T) {
			old := diffMerchant(t)
			next := clone(old)
			poke(reflect.ValueOf(next).Elem().Field(i))
			d := Compare(old, next)
			switch {
			case slices.Contains(ignored, f.Name):
				if !d.Empty() {
					t.Errorf("%s is replaced by the hub, yet reported: %v", f.Name, d.Lines())
				}
			case slices.Contains(selfService, f.Name):
				if d.Empty() || d.TrustChange() {
					t.Errorf("%s: %v, want a self-service change", f.Name, d.Lines())
				}
			default:
				if !d.TrustChange() {
					t.Errorf("%s: %v, want a trust change", f.Name, d.Lines())
				}
			}
		})
	}
	svcType := reflect.TypeOf(OfferedService{})
	for i := 0; i < svcType.NumField(); i++ {
		f := svcType.Field(i)
		t.Run("OfferedService."+f.Name, func(t *testing.T) {
			old := diffMerchant(t)
			next := clone(old)
			poke(reflect.ValueOf(&next.Services[1]).Elem().Field(i))
			if d := Compare(old, next); !d.TrustChange() {
				t.Errorf("%s: %v, want a trust change", f.Name, d.Lines())
			}
		})
	}
	// A key without a certificate (not valid metadata) still diffs.
	old := diffMerchant(t)
	next := clone(old)
	next.Keys[0].Certificate = nil
	if d := Compare(old, next); d.Empty() {
		t.Errorf("a changed key was not reported")
	}
	if got := (&Diff{}).String(); got != "" {
		t.Errorf("empty diff renders %q", got)
	}
}

// poke sets v to a value that differs from what diffMerchant holds.
func poke(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("poked")
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 7)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		poke(s.Index(0))
		v.Set(s)
	case reflect.Pointer:
		n := reflect.New(v.Type().Elem())
		if n.Elem().Kind() == reflect.Struct && n.Elem().NumField() > 0 && n.Elem().Field(0).CanSet() {
			poke(n.Elem().Field(0))
		}
		v.Set(n)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(diffNotAfter))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).CanSet() {
				poke(v.Field(i))
			}
		}
	case reflect.Uint8:
		v.SetUint(v.Uint() + 7)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	default:
		panic("poke: " + v.Kind().String())
	}
}
