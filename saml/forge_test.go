package saml

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// forgeOpts describes a signature an attacker (or a sloppy implementation)
// might produce. forgeSign builds it by hand so that fixtures can carry
// algorithms and shapes our Signer refuses to write.
type forgeOpts struct {
	key        crypto.Signer
	cert       *x509.Certificate
	sigMethod  string
	sigHash    crypto.Hash
	digest     string
	digestHash crypto.Hash
	c14n       string
	transforms []string
	refURI     string         // default "#" + ID of target
	target     *etree.Element // element the reference digests; default root
}

// forgeSign signs root per o and inserts the signature after saml:Issuer.
func forgeSign(t testing.TB, root *etree.Element, o forgeOpts) {
	t.Helper()
	if o.sigMethod == "" {
		o.sigMethod, o.sigHash = AlgRSASHA256, crypto.SHA256
	}
	if o.digest == "" {
		o.digest, o.digestHash = AlgSHA256, crypto.SHA256
	}
	if o.c14n == "" {
		o.c14n = AlgExcC14N
	}
	if o.transforms == nil {
		o.transforms = []string{AlgEnveloped, AlgExcC14N}
	}
	target := o.target
	if target == nil {
		target = root
	}
	if o.refURI == "" {
		o.refURI = "#" + target.SelectAttrValue("ID", "")
	}
	canon := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	c, err := canon.Canonicalize(detach(target))
	if err != nil {
		t.Fatal(err)
	}
	h := o.digestHash.New()
	h.Write(c)
	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", NSDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", o.c14n)
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", o.sigMethod)
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", o.refURI)
	trs := ref.CreateElement("ds:Transforms")
	for _, tr := range o.transforms {
		trs.CreateElement("ds:Transform").CreateAttr("Algorithm", tr)
	}
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", o.digest)
	ref.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(h.Sum(nil)))
	siC, err := canon.Canonicalize(detach(si))
	if err != nil {
		t.Fatal(err)
	}
	hh := o.sigHash.New()
	hh.Write(siC)
	sv, err := o.key.Sign(rand.Reader, hh.Sum(nil), o.sigHash)
	if err != nil {
		t.Fatal(err)
	}
	sig.CreateElement("ds:SignatureValue").SetText(base64.StdEncoding.EncodeToString(sv))
	sig.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data").CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(o.cert.Raw))
	insertAfterIssuer(root, sig)
}
