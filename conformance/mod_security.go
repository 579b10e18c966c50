package conformance

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/kecis/kecis/saml"
)

// refusal is how the profile says an attack must be refused.
type refusal int

const (
	// beforeVerification: an unsigned, generic SOAP fault; never a signed
	// message (KECIS §5.3.1).
	beforeVerification refusal = iota
	// afterVerification: a signed ServiceResponse with the given codes
	// (KECIS §5.3.2).
	afterVerification
	// atTransport: the connection is refused (TLS handshake, HTTP status or
	// fault) without a signed answer (KECIS §12.1: back-channel requests
	// only from the hub and a registered tester).
	atTransport
)

// attack is one negative test of the security module.
type attack struct {
	name, title string
	clauses     []string
	refusal     refusal
	code, sub   string
	// sensitive: built on a request carrying a card (the encryption
	// attacks), whose refusals must all look alike.
	sensitive bool
	// mayReset: a connection closed while the request was still being
	// sent counts as the refusal (a participant that stops reading at its
	// size cap answers before the sender has finished writing).
	mayReset bool
	send     func(c *C, label string) (*Exchange, error)
}

// Refusal texts and markers the no-leak check looks for.
var leakMarkers = []string{"root:x:0:0", "/bin/", "goroutine ", ".go:", "panic", "runtime error", "x509:", "crypto/", "etree", "encoding/xml", "xml: ", "cipher:", "sql:", "SQLSTATE", "Exception", "stack trace", "Traceback"}

func securityModule() *Module {
	m := &Module{
		Name:  "security",
		Title: "Security: attacks the participant must refuse",
		Description: "The suite generates, against the participant, the attacks of KECIS §9 (XML signature wrapping, comment injection, DOCTYPE and entities, replay, wrong Destination, expiry, legacy and tampered ciphertexts, unknown issuers and keys, a wrong TLS client certificate) " +
			"and sends each directly to the participant. Each must be refused as the profile says — an unsigned generic SOAP fault before verification, a signed status after — and no refusal may leak anything.",
		Applies: func(e *Env) (bool, string) {
			if _, err := e.probeService(); err != nil {
				return false, err.Error()
			}
			return true, ""
		},
	}
	m.Conditions = append(m.Conditions, &Condition{ID: "security.baseline", Title: "A valid request sent directly with the tester's TLS client certificate is accepted (so that refusals below mean something)",
		Clauses: []string{"KECIS §12.1", "KECIS §5.1"}, Run: func(c *C) error {
			req, err := c.ProbeRequest("baseline")
			if err != nil {
				return err
			}
			x, err := c.Exchange(c.Context(), "baseline", Direct, req, Seal{})
			if err != nil {
				return err
			}
			c.Record(x)
			if err := c.acceptedByPipeline(x); err != nil {
				return fmt.Errorf("%w — providers must admit a registered tester's TLS client certificate in test mode; every attack below would be refused for that reason alone", err)
			}
			return nil
		}})
	for _, a := range attacks() {
		m.Conditions = append(m.Conditions, a.condition())
	}
	m.Conditions = append(m.Conditions,
		&Condition{ID: "security.no-oracle", Title: "Every decryption failure is the one refusal Requester / DecryptionFailed with the same text: no padding, tag or format oracle",
			Clauses: []string{"KECIS §8.4", "KECIS §9.9", "XML Encryption 1.1 §6.1 (Jager & Somorovsky, CCS 2011)"}, Needs: []string{"security.baseline"}, Run: noOracle},
		&Condition{ID: "security.no-leak", Title: "No refusal leaks: no card number, no file content, no internal detail; faults carry the public category text",
			Clauses: []string{"KECIS §5.3.1", "KECIS §5.3.2", "KECIS §8.1"}, Needs: []string{"security.baseline"}, Run: noLeak},
	)
	return m
}

func (a attack) condition() *Condition {
	return &Condition{ID: "security." + a.name, Title: a.title, Clauses: a.clauses, Needs: []string{"security.baseline"}, Run: func(c *C) error {
		x, err := a.send(c, a.name)
		if err != nil {
			var o *outcome
			if errors.As(err, &o) {
				return o
			}
			return NeedsReview("the suite could not build the attack: %v", err)
		}
		c.Record(x)
		keep(c, "attacks", x)
		if a.sensitive {
			keep(c, "decryption", x)
		}
		switch a.refusal {
		case beforeVerification:
			if a.mayReset && x.TransportErr != nil {
				c.Note("the connection closed while the request was being sent: the participant stopped reading at its size cap")
				return nil
			}
			return refusedBeforeVerification(x)
		case atTransport:
			return refusedAtTransport(x)
		}
		return expectStatus(c, x, a.code, a.sub)
	}}
}

func keep(c *C, key string, x *Exchange) {
	v, _ := c.Get(key)
	xs, _ := v.([]*Exchange)
	c.Set(key, append(xs, x))
}

func kept(c *C, key string) []*Exchange {
	v, _ := c.Get(key)
	xs, _ := v.([]*Exchange)
	return xs
}

func refusedBeforeVerification(x *Exchange) error {
	switch {
	case x.Response != nil && x.Response.Status.OK():
		return fmt.Errorf("accepted: %s", x.Describe())
	case x.Message != nil:
		return fmt.Errorf("answered with a signed message (%s) although the request cannot have verified: KECIS §5.3.1 answers with an unsigned generic fault and never signs", x.Describe())
	case x.Fault != nil:
		if x.HTTPStatus != 500 {
			return Warn("refused with a SOAP fault, but with HTTP %d (SOAP 1.1: 500)", x.HTTPStatus)
		}
		return nil
	case x.TransportErr != nil:
		return Warn("refused without an answer (%v); KECIS §10.1 answers with a SOAP fault", x.TransportErr)
	}
	return Warn("refused with HTTP %d and no SOAP fault", x.HTTPStatus)
}

func refusedAtTransport(x *Exchange) error {
	switch {
	case x.Message != nil:
		return fmt.Errorf("a caller whose TLS client certificate is neither the hub's nor a registered tester's was answered: %s", x.Describe())
	case x.TransportErr != nil, x.Fault != nil, x.HTTPStatus >= 400:
		return nil
	}
	return fmt.Errorf("HTTP %d for a caller without an admitted TLS client certificate", x.HTTPStatus)
}

// signedProbe is the probe request, changed by mut, signed by the tester.
func signedProbe(c *C, label string, mut func(*saml.ServiceRequest)) (*saml.ServiceRequest, []byte, error) {
	req, err := c.ProbeRequest(label)
	if err != nil {
		return nil, nil, err
	}
	if mut != nil {
		mut(req)
	}
	msg, err := c.Sealed(req, Seal{})
	return req, msg, err
}

func parseMsg(msg []byte) (*etree.Element, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(msg); err != nil {
		return nil, err
	}
	return doc.Root(), nil
}

// tamper signs the probe, then changes the signed tree with f.
func tamper(f func(c *C, root *etree.Element) error) func(c *C, label string) (*Exchange, error) {
	return func(c *C, label string) (*Exchange, error) {
		req, msg, err := signedProbe(c, label, nil)
		if err != nil {
			return nil, err
		}
		root, err := parseMsg(msg)
		if err != nil {
			return nil, err
		}
		if err := f(c, root); err != nil {
			return nil, err
		}
		out, err := saml.Serialize(root)
		if err != nil {
			return nil, err
		}
		return c.Send(c.Context(), label, Direct, req.Service, rootID(out), out), nil
	}
}

// unsignedThen builds the probe unsigned, lets f change and sign it.
func unsignedThen(f func(c *C, root *etree.Element) error) func(c *C, label string) (*Exchange, error) {
	return func(c *C, label string) (*Exchange, error) {
		req, err := c.ProbeRequest(label)
		if err != nil {
			return nil, err
		}
		root, err := c.Build(req, Seal{})
		if err != nil {
			return nil, err
		}
		if err := f(c, root); err != nil {
			return nil, err
		}
		out, err := saml.Serialize(root)
		if err != nil {
			return nil, err
		}
		return c.Send(c.Context(), label, Direct, req.Service, req.ID, out), nil
	}
}

// bytesThen signs the probe and lets f rewrite the whole HTTP body.
func bytesThen(f func(c *C, req *saml.ServiceRequest, msg []byte) []byte) func(c *C, label string) (*Exchange, error) {
	return func(c *C, label string) (*Exchange, error) {
		req, msg, err := signedProbe(c, label, nil)
		if err != nil {
			return nil, err
		}
		return c.SendRaw(c.Context(), label, req.Service, f(c, req, msg), nil), nil
	}
}

// modified sends a probe changed by mut and sealed with o.
func modified(mut func(c *C, req *saml.ServiceRequest), o func(c *C) (Seal, error)) func(c *C, label string) (*Exchange, error) {
	return func(c *C, label string) (*Exchange, error) {
		req, err := c.ProbeRequest(label)
		if err != nil {
			return nil, err
		}
		if mut != nil {
			mut(c, req)
		}
		seal := Seal{}
		if o != nil {
			if seal, err = o(c); err != nil {
				return nil, err
			}
		}
		return c.Exchange(c.Context(), label, Direct, req, seal)
	}
}

// encrypted sends a sensitive request (a card approval) sealed with o.
func encrypted(o func(c *C) (Seal, error)) func(c *C, label string) (*Exchange, error) {
	return func(c *C, label string) (*Exchange, error) {
		req, err := c.SensitiveRequest(label)
		if err != nil {
			return nil, err
		}
		seal, err := o(c)
		if err != nil {
			return nil, err
		}
		return c.Exchange(c.Context(), label, Direct, req, seal)
	}
}

// legacy encrypts the card with refused algorithms.
func legacy(content, transport string) func(c *C) (Seal, error) {
	return func(c *C) (Seal, error) {
		cert, _ := c.Descriptor().EncryptionCertificate(c.Now())
		return Seal{NoEncrypt: true, Tamper: func(root *etree.Element) error {
			card := findLocal(root, "Card")
			if card == nil {
				return errors.New("no Card to encrypt")
			}
			return legacyEncrypt(card, c.Descriptor().EntityID, cert, content, transport)
		}}, nil
	}
}

// gcmTamper encrypts properly, then changes the card's ciphertext.
func gcmTamper(f func([]byte) []byte) func(c *C) (Seal, error) {
	return func(c *C) (Seal, error) {
		return Seal{Tamper: func(root *etree.Element) error {
			pay := findLocal(root, "Payment")
			if pay == nil {
				return errors.New("no Payment")
			}
			cv := contentCipherValue(findLocal(pay, "EncryptedData"))
			if cv == nil {
				return errors.New("no encrypted card")
			}
			b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(cv.Text()), ""))
			if err != nil {
				return err
			}
			cv.SetText(base64.StdEncoding.EncodeToString(f(b)))
			return nil
		}}, nil
	}
}

func withReset(a attack) attack { a.mayReset = true; return a }

func attacks() []attack {
	pre := func(name, title string, send func(*C, string) (*Exchange, error), clauses ...string) attack {
		return attack{name: name, title: title, clauses: clauses, refusal: beforeVerification, send: send}
	}
	post := func(name, title, code, sub string, send func(*C, string) (*Exchange, error), clauses ...string) attack {
		return attack{name: name, title: title, clauses: clauses, refusal: afterVerification, code: code, sub: sub, send: send}
	}
	enc := func(name, title string, o func(c *C) (Seal, error), clauses ...string) attack {
		return attack{name: name, title: title, clauses: append([]string{"KECIS §8.1", "KECIS §8.4"}, clauses...), refusal: afterVerification,
			code: saml.StatusRequester, sub: saml.CodeDecryptionFailed, sensitive: true, send: encrypted(o)}
	}
	evilOrder := func(c *C, root *etree.Element, label string) {
		if ecom := findLocal(root, "Ecom"); ecom != nil {
			ecom.CreateAttr("ConsumerOrderID", c.OrderID(label+"-evil"))
		}
	}
	return []attack{
		pre("xsw1-clone-inside-signature", "XSW1: the signed request cloned into its own Signature, the root altered and given a new ID",
			tamper(func(c *C, root *etree.Element) error {
				sig := childElement(root, "Signature")
				clone := root.Copy()
				clone.RemoveChild(childElement(clone, "Signature"))
				sig.AddChild(clone)
				root.CreateAttr("ID", "_evil_"+c.RunID+"_xsw1")
				evilOrder(c, root, "xsw1")
				return nil
			}), "KECIS §9.1", "KECIS §4.1", "KECIS §5.2"),
		pre("xsw2-clone-before-signature", "XSW2: the signed request cloned as a sibling before the Signature, the root altered and given a new ID",
			tamper(func(c *C, root *etree.Element) error {
				sig := childElement(root, "Signature")
				clone := root.Copy()
				clone.RemoveChild(childElement(clone, "Signature"))
				root.InsertChildAt(sig.Index(), clone)
				root.CreateAttr("ID", "_evil_"+c.RunID+"_xsw2")
				evilOrder(c, root, "xsw2")
				return nil
			}), "KECIS §9.1", "KECIS §4.1", "KECIS §5.2"),
		pre("xsw-signed-request-in-extensions", "XSW (Extensions): an unsigned request carrying a validly signed one inside samlp:Extensions",
			func(c *C, label string) (*Exchange, error) {
				_, victim, err := signedProbe(c, label+"-victim", nil)
				if err != nil {
					return nil, err
				}
				vroot, err := parseMsg(victim)
				if err != nil {
					return nil, err
				}
				req, err := c.ProbeRequest(label)
				if err != nil {
					return nil, err
				}
				root, err := req.Element()
				if err != nil {
					return nil, err
				}
				ext := etree.NewElement("samlp:Extensions")
				ext.AddChild(vroot)
				root.InsertChildAt(1, ext)
				out, err := saml.Serialize(root)
				if err != nil {
					return nil, err
				}
				return c.Send(c.Context(), label, Direct, req.Service, req.ID, out), nil
			}, "KECIS §9.1", "KECIS §4.4"),
		pre("xsw-signature-in-extensions", "XSW (Extensions): the request's own signature moved into samlp:Extensions",
			tamper(func(c *C, root *etree.Element) error {
				sig := childElement(root, "Signature")
				root.RemoveChild(sig)
				ext := etree.NewElement("samlp:Extensions")
				ext.CreateAttr("xmlns:samlp", saml.NSSAMLP)
				ext.AddChild(sig)
				root.InsertChildAt(1, ext)
				return nil
			}), "KECIS §9.1", "KECIS §4.1"),
		pre("two-signatures", "A second signature, by a key no participant publishes, appended to a validly signed request (CVE-2022-41912 class)",
			tamper(func(c *C, root *etree.Element) error {
				o, err := theOutsider()
				if err != nil {
					return err
				}
				other := root.Copy()
				other.RemoveChild(childElement(other, "Signature"))
				if err := o.signer.Sign(other); err != nil {
					return err
				}
				root.AddChild(childElement(other, "Signature").Copy())
				return nil
			}), "KECIS §4.4", "KECIS §9.1"),
		pre("unsigned", "A request with no signature at all (fail-open)",
			modified(nil, func(*C) (Seal, error) { return Seal{Unsigned: true}, nil }), "KECIS §4.1", "KECIS §9.1"),
		pre("tampered-after-signing", "The request's order changed after signing",
			bytesThen(func(c *C, req *saml.ServiceRequest, msg []byte) []byte {
				o := req.Payload.Ecom.ConsumerOrderID
				return saml.WrapSOAP(bytes.Replace(msg, []byte(`"`+o+`"`), []byte(`"`+o+`-tampered"`), 1))
			}), "KECIS §5.1", "KECIS §9.7"),
		pre("duplicate-id", "An element inside the payload carries the root's ID",
			tamper(func(c *C, root *etree.Element) error {
				findLocal(root, "Ecom").CreateAttr("id", root.SelectAttrValue("ID", ""))
				return nil
			}), "KECIS §9.3", "KECIS §5.1"),
		pre("namespaced-id", "A namespaced ID attribute beside the root's ID (attribute pollution)",
			tamper(func(c *C, root *etree.Element) error {
				root.CreateAttr("xmlns:x", "urn:conformance:x")
				root.CreateAttr("x:ID", "_other_"+c.RunID)
				return nil
			}), "KECIS §9.3", "KECIS §5.1"),
		pre("reference-to-payload", "The signature's reference digests the payload's Ecom element, not the root",
			unsignedThen(func(c *C, root *etree.Element) error {
				ecom := findLocal(root, "Ecom")
				ecom.CreateAttr("ID", "_payload_"+c.RunID)
				return forgeSign(root, c.Tester.Signer, forgeOpts{target: ecom})
			}), "KECIS §4.1", "KECIS §9.3"),
		pre("sha1-digest", "A SHA-1 reference digest",
			unsignedThen(func(c *C, root *etree.Element) error {
				return forgeSign(root, c.Tester.Signer, forgeOpts{digest: algSHA1Digest, digestHash: sha1Hash})
			}), "KECIS §4.2", "KECIS §9.4"),
		pre("comment-injection", "A comment inside a signed value (alice@evil.com<!---->.attacker.com): canonicalization drops it, so the signature still verifies",
			func(c *C, label string) (*Exchange, error) {
				key := c.Key(label) + "-alice@evil.com.attacker.com"
				req, msg, err := signedProbe(c, label, func(r *saml.ServiceRequest) { r.IdempotencyKey = key })
				if err != nil {
					return nil, err
				}
				out := bytes.Replace(msg, []byte("alice@evil.com.attacker.com"), []byte("alice@evil.com<!---->.attacker.com"), 1)
				return c.Send(c.Context(), label, Direct, req.Service, req.ID, out), nil
			}, "KECIS §9.2", "KECIS §2.5"),
		pre("doctype-xxe", "An external entity (file:///etc/passwd) declared in a DOCTYPE and referenced from a signed value",
			bytesThen(func(c *C, req *saml.ServiceRequest, msg []byte) []byte {
				o := req.Payload.Ecom.ConsumerOrderID
				body := saml.WrapSOAP(bytes.Replace(msg, []byte(`"`+o+`"`), []byte(`"&x;"`), 1))
				return append([]byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<!DOCTYPE soap:Envelope [<!ENTITY x SYSTEM "file:///etc/passwd">]>`+"\n"), body...)
			}), "KECIS §9.6", "KECIS §5.1"),
		pre("billion-laughs", "Nested internal entities (billion laughs)",
			bytesThen(func(c *C, req *saml.ServiceRequest, msg []byte) []byte {
				var b strings.Builder
				b.WriteString(`<!DOCTYPE soap:Envelope [<!ENTITY lol "lol">`)
				prev := "lol"
				for i := 1; i <= 9; i++ {
					name := fmt.Sprintf("lol%d", i)
					fmt.Fprintf(&b, `<!ENTITY %s "%s">`, name, strings.Repeat("&"+prev+";", 10))
					prev = name
				}
				b.WriteString("]>\n")
				o := req.Payload.Ecom.ConsumerOrderID
				return append([]byte(b.String()), saml.WrapSOAP(bytes.Replace(msg, []byte(`"`+o+`"`), []byte(`"&lol9;"`), 1))...)
			}), "KECIS §9.6"),
		withReset(pre("oversize", "A 2 MiB request (the cap is 1 MiB)",
			bytesThen(func(c *C, req *saml.ServiceRequest, msg []byte) []byte {
				pad := `<kx:Pad xmlns:kx="urn:kecis:ecml-ext:1.0">` + strings.Repeat("A", 2<<20) + `</kx:Pad>`
				if i := bytes.LastIndex(msg, []byte("</")); i > 0 {
					// Inside the message, before the root's end tag.
					return saml.WrapSOAP(append(append(append([]byte{}, msg[:i]...), pad...), msg[i:]...))
				}
				return saml.WrapSOAP(append(msg, pad...))
			}), "KECIS §5.1", "KECIS §9.6")),
		pre("untrusted-key", "A request naming the tester as issuer, signed by a key the tester's metadata does not publish (its certificate in KeyInfo)",
			modified(nil, func(*C) (Seal, error) {
				o, err := theOutsider()
				if err != nil {
					return Seal{}, err
				}
				return Seal{Signer: o.signer}, nil
			}), "KECIS §4.3", "KECIS §9.7"),
		pre("unknown-issuer", "A well-signed request from an entity that is no participant",
			modified(func(c *C, r *saml.ServiceRequest) {
				r.Issuer = "https://unknown-" + c.RunID + ".conformance.invalid/kecis"
			}, func(*C) (Seal, error) {
				o, err := theOutsider()
				if err != nil {
					return Seal{}, err
				}
				return Seal{Signer: o.signer}, nil
			}), "KECIS §4.3", "KECIS §9.7", "KECIS §5.3.1"),
		{name: "wrong-tls-client-cert", title: "A valid request over a TLS connection whose client certificate is neither the hub's nor a registered tester's",
			clauses: []string{"KECIS §12.1", "KECIS §10.1"}, refusal: atTransport, send: func(c *C, label string) (*Exchange, error) {
				o, err := theOutsider()
				if err != nil {
					return nil, err
				}
				req, msg, err := signedProbe(c, label, nil)
				if err != nil {
					return nil, err
				}
				x := c.SendWith(c.Context(), label, req.Service, req.ID, msg, c.httpClient(o.tls, c.Descriptor()))
				x.TransportRefusal = true
				return x, nil
			}},
		{name: "no-tls-client-cert", title: "A valid request over a TLS connection without a client certificate",
			clauses: []string{"KECIS §12.1", "KECIS §10.1"}, refusal: atTransport, send: func(c *C, label string) (*Exchange, error) {
				req, msg, err := signedProbe(c, label, nil)
				if err != nil {
					return nil, err
				}
				x := c.SendWith(c.Context(), label, req.Service, req.ID, msg, c.httpClient(tls.Certificate{}, c.Descriptor()))
				x.TransportRefusal = true
				return x, nil
			}},
		post("expired", "A request issued 10 minutes ago (the skew is 3) is refused with a signed Requester / InvalidTime", saml.StatusRequester, saml.CodeInvalidTime,
			modified(func(c *C, r *saml.ServiceRequest) { r.IssueInstant = c.Now().Add(-10 * time.Minute) }, nil), "KECIS §7.2", "KECIS §5.3.2", "KECIS §9.8"),
		post("wrong-destination", "A request signed for another recipient is refused with a signed Requester / WrongDestination", saml.StatusRequester, saml.CodeWrongDestination,
			modified(func(c *C, r *saml.ServiceRequest) {
				r.Destination = "https://elsewhere-" + c.RunID + ".conformance.invalid/kecis/soap"
			}, nil), "KECIS §2.2", "KECIS §5.1", "KECIS §9.8"),
		post("replay", "A valid request delivered a second time, byte for byte, is refused with a signed Requester / Replay", saml.StatusRequester, saml.CodeReplay,
			func(c *C, label string) (*Exchange, error) {
				req, msg, err := signedProbe(c, label, nil)
				if err != nil {
					return nil, err
				}
				first := c.Send(c.Context(), label+" (first delivery)", Direct, req.Service, req.ID, msg)
				c.Record(first)
				if err := c.acceptedByPipeline(first); err != nil {
					return nil, NeedsReview("the first delivery was not accepted, so a replay cannot be told apart: %v", err)
				}
				return c.Send(c.Context(), label+" (second delivery)", Direct, req.Service, req.ID, msg), nil
			}, "KECIS §7.2", "KECIS §5.1", "KECIS §9.8"),
		post("wrong-version", "Version 3.0 is refused with a signed VersionMismatch", saml.StatusVersionMismatch, "",
			modified(func(c *C, r *saml.ServiceRequest) { r.Version = "3.0" }, nil), "KECIS §5.3.2", "SAML core §3.2.2.2"),
		post("on-behalf-of-not-from-hub", "kecis:OnBehalfOf from a sender other than the hub is refused with a signed Requester / NotAuthorized", saml.StatusRequester, saml.CodeNotAuthorized,
			modified(func(c *C, r *saml.ServiceRequest) {
				r.OnBehalfOf = "https://merchant-" + c.RunID + ".conformance.invalid/kecis"
			}, nil), "KECIS §2.7", "KECIS §5.1"),
		enc("enc-aes128-cbc", "The card encrypted with AES-128-CBC (XML Encryption 1.0) is refused with DecryptionFailed", legacy(algAES128CBC, saml.AlgRSAOAEPMGF1P), "KECIS §9.9"),
		enc("enc-aes256-cbc", "The card encrypted with AES-256-CBC is refused with DecryptionFailed", legacy(algAES256CBC, saml.AlgRSAOAEPMGF1P), "KECIS §9.9"),
		enc("enc-3des-cbc", "The card encrypted with Triple DES (CBC) is refused with DecryptionFailed", legacy(algTripleDES, saml.AlgRSAOAEPMGF1P), "KECIS §9.9"),
		enc("enc-rsa-1_5", "AES-256-GCM content with its key wrapped by RSA PKCS#1 v1.5 (rsa-1_5) is refused with DecryptionFailed", legacy(saml.AlgAES256GCM, algRSA15), "KECIS §9.9"),
		enc("enc-gcm-flipped-tag", "A correctly encrypted card whose GCM tag has one bit flipped is refused with DecryptionFailed",
			gcmTamper(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), "XML Encryption 1.1 §5.2.4"),
		enc("enc-gcm-truncated", "A correctly encrypted card whose ciphertext is cut to 20 octets is refused with DecryptionFailed",
			gcmTamper(func(b []byte) []byte { return b[:min(20, len(b))] }), "XML Encryption 1.1 §5.2.4"),
		enc("enc-wrong-recipient", "The card encrypted for another participant (the tester's own key) is refused with DecryptionFailed",
			func(c *C) (Seal, error) {
				if c.Tester.EncCert == nil {
					return Seal{}, Skip("the profile gives the tester no encryption certificate")
				}
				return Seal{Encryptor: &saml.Encryptor{Recipient: c.Tester.EntityID, Cert: c.Tester.EncCert}}, nil
			}, "KECIS §8.3"),
		enc("enc-sensitive-in-clear", "The card in clear is refused with DecryptionFailed",
			func(*C) (Seal, error) { return Seal{NoEncrypt: true}, nil }),
		enc("enc-not-sensitive", "The Transaction (the amount policy must see) encrypted beside the card is refused with DecryptionFailed",
			func(c *C) (Seal, error) {
				cert, _ := c.Descriptor().EncryptionCertificate(c.Now())
				return Seal{Tamper: func(root *etree.Element) error {
					tx := findLocal(root, "Transaction")
					if tx == nil {
						return Skip("the sensitive request has no Transaction")
					}
					_, err := (&saml.Encryptor{Recipient: c.Descriptor().EntityID, Cert: cert}).EncryptElement(tx)
					return err
				}}, nil
			}),
	}
}

func noOracle(c *C) error {
	xs := kept(c, "decryption")
	if len(xs) == 0 {
		return Skip("no encryption attack ran")
	}
	type answer struct{ code, sub, msg string }
	seen := map[answer][]string{}
	var order []answer
	example := map[answer]*Exchange{}
	for _, x := range xs {
		a := answer{code: "(no signed answer)"}
		if x.Response != nil {
			st := x.Response.Status
			a = answer{st.Top(), saml.StatusName(st.SubCode), st.Message}
		} else if x.Fault != nil {
			a = answer{code: "SOAP fault", msg: x.Fault.String}
		}
		if _, ok := seen[a]; !ok {
			order = append(order, a)
			example[a] = x
		}
		seen[a] = append(seen[a], x.Label)
	}
	if len(order) == 1 {
		c.Note("%d decryption attacks, one answer: %s/%s %q", len(xs), order[0].code, order[0].sub, order[0].msg)
		return nil
	}
	var lines []string
	for _, a := range order {
		lines = append(lines, fmt.Sprintf("%s/%s %q ← %s", a.code, a.sub, a.msg, strings.Join(seen[a], ", ")))
		c.Note("%s/%s %q for %s", a.code, a.sub, a.msg, strings.Join(seen[a], ", "))
		c.Record(example[a])
	}
	return fmt.Errorf("the decryption attacks got %d different answers, so a sender can tell them apart: %s", len(order), strings.Join(lines, "; "))
}

func noLeak(c *C) error {
	xs := kept(c, "attacks")
	if len(xs) == 0 {
		return Skip("no attack ran")
	}
	var leaks, notes []string
	for _, x := range xs {
		body := string(x.Body)
		if where := panIn(x.Body); where != "" {
			leaks = append(leaks, x.Label+": a card number in clear in "+where)
		}
		var texts []string
		if x.Fault != nil {
			texts = append(texts, x.Fault.String)
			if !x.TransportRefusal && !slices.Contains(publicFaultTexts, x.Fault.String) {
				notes = append(notes, fmt.Sprintf("%s: faultstring %q is not a public category text of KECIS §5.3.1", x.Label, x.Fault.String))
			}
		}
		if x.Response != nil {
			texts = append(texts, x.Response.Status.Message)
		}
		if x.Message == nil && x.Fault == nil {
			texts = append(texts, body)
		}
		for _, t := range texts {
			for _, m := range leakMarkers {
				if strings.Contains(t, m) {
					leaks = append(leaks, fmt.Sprintf("%s: %q reveals %q", x.Label, c.scrub(t), m))
					break
				}
			}
		}
	}
	c.Note("%d refusals examined", len(xs))
	if len(leaks) > 0 {
		return fmt.Errorf("%s", joinLines(leaks))
	}
	if len(notes) > 0 {
		return Warn("%s", joinLines(notes))
	}
	return nil
}
