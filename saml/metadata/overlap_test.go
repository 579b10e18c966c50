package metadata

import "testing"

func TestBINRangeOverlaps(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"404143", "404143", true},
		{"404143", "404144", false},
		{"4041", "404143", true}, // a shorter prefix holds every longer one under it
		{"404143", "4041", true},
		{"4042", "404143", false},
		{"411111-411199", "4111", true},
		{"4111", "411111-411199", true},
		{"411111-411199", "4112", false},
		{"411111-411199", "41119", true},  // 41119x lies inside
		{"411111-411199", "41120", false}, // 41120x lies above
		{"411111-411199", "411199", true}, // the upper end is inclusive
		{"411111-411199", "411110", false},
		{"411111-411199", "411150-411300", true},
		{"411200-411300", "411111-411199", false},
		{"41111111-41111199", "411111", true}, // 8-digit ranges under a 6-digit BIN
		{"41111200-41111299", "411111", false},
		{"5", "404143", false},
		{"5", "4", false},
		{"5", "51-55", true},
		{"4", "4", true},
		{"1-3", "29", true},
		{"1-3", "40-49", false},
		{"19-21", "2", true},
	} {
		a, b := mustBINs(t, c.a)[0], mustBINs(t, c.b)[0]
		if got := a.Overlaps(b); got != c.want {
			t.Errorf("%s overlaps %s = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := b.Overlaps(a); got != c.want {
			t.Errorf("%s overlaps %s = %v, want %v (not symmetric)", c.b, c.a, got, c.want)
		}
	}
	// Malformed ranges (never out of ParseBINList) overlap nothing.
	for _, r := range []BINRange{{}, {From: "41", To: "4"}, {From: "42", To: "41"}, {From: "4x", To: "4x"}} {
		if r.Overlaps(BINRange{From: "4", To: "4"}) {
			t.Errorf("malformed range %+v overlaps", r)
		}
	}
}

func TestBINListOverlap(t *testing.T) {
	a, b, ok := mustBINs(t, "5 404143 4111").Overlap(mustBINs(t, "420000 411111-411199"))
	if !ok || a.String() != "4111" || b.String() != "411111-411199" {
		t.Errorf("Overlap = %s %s %v", a, b, ok)
	}
	if _, _, ok := mustBINs(t, "5").Overlap(mustBINs(t, "4 6")); ok {
		t.Error("5 overlaps 4 or 6")
	}
	if _, _, ok := BINList(nil).Overlap(mustBINs(t, "4")); ok {
		t.Error("an empty list overlaps")
	}
}

func TestClaimOverlap(t *testing.T) {
	svc := func(bins string, banks ...string) *OfferedService {
		s := &OfferedService{Service: "urn:kecis:service:card:approve", BankCodes: banks}
		if bins != "" {
			s.BINs = mustBINs(t, bins)
		}
		return s
	}
	for _, c := range []struct {
		name string
		role Role
		a, b *OfferedService
		want string // "" for none
	}{
		{"issuers, disjoint", RoleIssuer, svc("404143"), svc("411111-411199"), ""},
		{"issuers, nested", RoleIssuer, svc("4041"), svc("5 404143"), "BINs 4041 and 404143"},
		{"issuer without a BIN list claims every BIN", RoleIssuer, svc(""), svc("404143"), "every BIN (no BIN list) and BINs 404143"},
		{"the other way round", RoleIssuer, svc("404143"), svc(""), "BINs 404143 and every BIN (no BIN list)"},
		{"neither lists BINs", RoleIssuer, svc(""), svc(""), "every BIN (neither lists BINs)"},
		{"banks, disjoint", RoleBank, svc("", "004"), svc("", "088", "020"), ""},
		{"banks, a common code", RoleBank, svc("", "004", "088"), svc("", "088"), "bank code 088"},
		{"bank without codes claims every code", RoleBank, svc(""), svc("", "004"), "every bank code (no bank code list) and bank codes 004"},
		{"the other way round", RoleBank, svc("", "004"), svc(""), "bank codes 004 and every bank code (no bank code list)"},
		{"neither lists bank codes", RoleBank, svc(""), svc(""), "every bank code (neither lists bank codes)"},
		{"banks do not claim BINs", RoleBank, svc("4041", "004"), svc("404143", "088"), ""},
		{"issuers do not claim bank codes", RoleIssuer, svc("5", "004"), svc("4", "004"), ""},
		{"other roles claim nothing", RolePG, svc(""), svc(""), ""},
		{"different services", RoleIssuer, svc("4"), &OfferedService{Service: "urn:kecis:service:card:refund", BINs: mustBINs(t, "4")}, ""},
	} {
		got, ok := ClaimOverlap(c.role, c.a, c.b)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s: ClaimOverlap = %q %v, want %q", c.name, got, ok, c.want)
		}
	}
}
