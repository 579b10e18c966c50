package saml

import (
	"testing"
)

// approvePayloadXML is a realistic card approval payload: addresses, card,
// transaction (about 4 KB once signed).
const approvePayloadXML = `<kecis:Payload xmlns:kecis="urn:kecis:protocol:1.0">` +
	`<Ecom SchemaVersion="urn:ietf:params:ecml:v2.0" ConsumerOrderID="ORDER-20261122-0001" Merchant="https://merchant.example/kecis">` +
	`<ShipTo><Postal PostalCode="06236" CountryCode="KR"><Name First="Gildong" Last="Hong"/><Company>Example Trading Co</Company>` +
	`<Street Line1="123 Teheran-ro" Line2="Gangnam-gu"/><City>Seoul</City><StateProv>11</StateProv></Postal>` +
	`<Telecom><Phone Number="01012345678"/></Telecom><Online><Email Address="gildong@example.kr"/></Online></ShipTo>` +
	`<BillTo><Postal PostalCode="06236" CountryCode="KR"><Name First="Gildong" Last="Hong"/>` +
	`<Street Line1="123 Teheran-ro" Line2="Gangnam-gu"/><City>Seoul</City><StateProv>11</StateProv></Postal>` +
	`<Telecom><Phone Number="01012345678"/></Telecom><Online><Email Address="gildong@example.kr"/></Online></BillTo>` +
	`<Payment><Card Name="HONG GILDONG" Type="VISA" Number="4111111111111111"><ExpDate Month="12" Year="2030"/></Card></Payment>` +
	`<User DataCountry="KR" DataLanguage="ko"><UserID>gildong</UserID></User>` +
	`<Transaction Amount="15000" Currency="KRW" Type="credit"><Id Reference="R26112200001"/>` +
	`<Data><PrivateUse>shop=example;channel=web;device=desktop;campaign=winter-sale-2026</PrivateUse></Data></Transaction>` +
	`</Ecom></kecis:Payload>`

func benchRequest(b *testing.B, w *world) *ServiceRequest {
	req, err := w.builder(merchantID, "bench").NewRequest(issuerEndpoint, ServiceURI("card", "approve"))
	if err != nil {
		b.Fatal(err)
	}
	req.IdempotencyKey = "order-20261122-0001-approve"
	req.Routing = &Routing{CardBIN: "411111", CardLast4: "1111"}
	req.Payload = payloadFrom(b, approvePayloadXML)
	return req
}

func benchSign(b *testing.B, s *Signer) {
	w := newWorld(b)
	req := benchRequest(b, w)
	unsigned, err := req.Element()
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := Serialize(unsigned)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for b.Loop() {
		// parse + sign + serialise, the content `kecis envelope bench` measures.
		root, err := ParseDocument(raw, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.SignToBytes(root); err != nil {
			b.Fatal(err)
		}
	}
}

func benchVerify(b *testing.B, s *Signer) {
	w := newWorld(b)
	req := benchRequest(b, w)
	el, _ := req.Element()
	data, err := s.SignToBytes(el)
	if err != nil {
		b.Fatal(err)
	}
	rc := w.issuerReceiver()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := rc.Verify(bg, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRSA(b *testing.B)     { benchSign(b, newWorld(b).merchant.Signer) }
func BenchmarkSignECDSA(b *testing.B)   { benchSign(b, newWorld(b).merchantEC.Signer) }
func BenchmarkVerifyRSA(b *testing.B)   { benchVerify(b, newWorld(b).merchant.Signer) }
func BenchmarkVerifyECDSA(b *testing.B) { benchVerify(b, newWorld(b).merchantEC.Signer) }

// BenchmarkParse is steps 1–3 of the pipeline alone.
func BenchmarkParse(b *testing.B) {
	w := newWorld(b)
	el, _ := benchRequest(b, w).Element()
	data, _ := w.merchant.Signer.SignToBytes(el)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseDocument(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
