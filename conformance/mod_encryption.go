package conformance

import (
	"errors"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/saml"
)

// encryptedAccepted sends a sensitive request encrypted with enc (nil: the
// default) and checks the participant decrypted it.
func encryptedAccepted(c *C, label string, enc func(*saml.Encryptor)) error {
	req, err := c.SensitiveRequest(label)
	if err != nil {
		return err
	}
	cert, ok := c.Descriptor().EncryptionCertificate(c.Now())
	if !ok {
		return errors.New("the participant publishes no encryption certificate valid now")
	}
	e := &saml.Encryptor{Recipient: c.Descriptor().EntityID, Cert: cert}
	if enc != nil {
		enc(e)
	}
	x, err := c.Exchange(c.Context(), "encryption "+label, ViaHub, req, Seal{Encryptor: e})
	if err != nil {
		return err
	}
	c.Record(x)
	if err := c.acceptedByPipeline(x); err != nil {
		return err
	}
	c.Note("decrypted: answered %s", describeStatus(x.Response.Status))
	c.voidIfApproved(x, req.Payload.Ecom.ConsumerOrderID, label)
	return nil
}

// voidIfApproved cancels an approval the suite made only to test
// something else (best effort, not judged).
func (c *C) voidIfApproved(x *Exchange, order, label string) {
	if x.Service != svcApprove || x.Response == nil || !x.Response.Status.OK() || !c.Declares(svcCancel) {
		return
	}
	no := approvalNumber(x.Response.Payload)
	req, err := c.refRequest(svcCancel, c.Key(label+"-void"), order, no, nil)
	if err != nil {
		return
	}
	if v, err := c.Exchange(c.Context(), "clean-up void of "+label, ViaHub, req, Seal{}); err == nil {
		c.Note("clean-up: voided the approval: %s", v.Describe())
	}
}

func approvalNumber(p *ecml.Payload) string {
	if p == nil || p.Ecom == nil || p.Ecom.Transaction == nil || p.Ecom.Transaction.Code == nil {
		return ""
	}
	return p.Ecom.Transaction.Code.Approval
}

func encryptionModule() *Module {
	return &Module{
		Name:  "encryption",
		Title: "Encryption",
		Description: "The participant decrypts what is encrypted for it with every algorithm the profile allows (AES-256-GCM and AES-128-GCM content, rsa-oaep-mgf1p and xmlenc11#rsa-oaep key transport). " +
			"What it refuses (CBC, rsa-1_5, tampered GCM) is the security module's; how it encrypts its own answers, the responses module's.",
		Applies: func(e *Env) (bool, string) {
			if _, ok := e.Descriptor().EncryptionCertificate(e.Now()); !ok {
				return false, "the participant publishes no encryption certificate"
			}
			if _, err := e.probeService(); err != nil {
				return false, err.Error()
			}
			return true, ""
		},
		Conditions: []*Condition{
			{ID: "encryption.aes256-gcm", Title: "AES-256-GCM content with an rsa-oaep-mgf1p key (the default) is decrypted",
				Clauses: []string{"KECIS §8.1", "KECIS §8.2", "XML Encryption 1.1 §5.2.4"}, Run: func(c *C) error {
					return encryptedAccepted(c, "enc-default", nil)
				}},
			{ID: "encryption.aes128-gcm", Title: "AES-128-GCM content is decrypted (REQUIRED by XML Encryption 1.1)",
				Clauses: []string{"KECIS §8.1", "XML Encryption 1.1 §5.2.4"}, Run: func(c *C) error {
					return encryptedAccepted(c, "enc-aes128", func(e *saml.Encryptor) { e.Content = saml.AES128GCM })
				}},
			{ID: "encryption.rsa-oaep", Title: "xmlenc11#rsa-oaep key transport with SHA-256 digest and MGF1-SHA-256 is decrypted",
				Clauses: []string{"KECIS §8.1", "XML Encryption 1.1 §5.5.2"}, Run: func(c *C) error {
					return encryptedAccepted(c, "enc-oaep11", func(e *saml.Encryptor) { e.KeyTransport = saml.AlgRSAOAEP })
				}},
		},
	}
}
