// Package saml implements the KECIS 1.0 message profile: the service request
// and response (applications of OASIS SAML 2.0 protocol messages), their
// enveloped XML signatures, the embedded signed authentication results, and
// the receive pipeline every KECIS endpoint runs.
//
// The profile is specified in docs/spec/ of this repository; doc comments
// cite its sections as "KECIS §N" and the SAML specifications as
// "SAML core §x.y" (saml-core-2.0-os).
package saml

// Namespaces used by KECIS messages.
const (
	// NSKECIS is the KECIS protocol namespace (KECIS §2.1).
	NSKECIS = "urn:kecis:protocol:1.0"
	// NSSAML is the SAML 2.0 assertion namespace (saml:Issuer).
	NSSAML = "urn:oasis:names:tc:SAML:2.0:assertion"
	// NSSAMLP is the SAML 2.0 protocol namespace (samlp:Status, samlp:Extensions).
	NSSAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
	// NSDSig is the XML Signature namespace.
	NSDSig = "http://www.w3.org/2000/09/xmldsig#"
	// NSXEnc is the XML Encryption namespace.
	NSXEnc = "http://www.w3.org/2001/04/xmlenc#"
	// NSXEnc11 is the XML Encryption 1.1 namespace.
	NSXEnc11 = "http://www.w3.org/2009/xmlenc11#"
	// NSSOAP11 is the SOAP 1.1 envelope namespace.
	NSSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
)

// Preferred prefixes; receivers never depend on them.
const (
	prefixKECIS = "kecis"
	prefixSAML  = "saml"
	prefixSAMLP = "samlp"
	prefixDSig  = "ds"
)

// Element names of the KECIS profile (KECIS §2.2–§2.4).
const (
	elServiceRequest       = "ServiceRequest"
	elServiceResponse      = "ServiceResponse"
	elAuthenticationResult = "AuthenticationResult"
	elIssuer               = "Issuer"
	elSignature            = "Signature"
	elExtensions           = "Extensions"
	elService              = "Service"
	elIdempotencyKey       = "IdempotencyKey"
	elOnBehalfOf           = "OnBehalfOf"
	elRouting              = "Routing"
	elPayload              = "Payload"
	elStatus               = "Status"
	elStatusCode           = "StatusCode"
	elStatusMessage        = "StatusMessage"
)

// SAMLVersion is the only protocol version KECIS 1.0 speaks (SAML core §3.2.2).
const SAMLVersion = "2.0"

// Algorithm identifiers of the signature profile (KECIS §4). Everything not
// listed here is refused.
const (
	AlgExcC14N         = "http://www.w3.org/2001/10/xml-exc-c14n#"
	AlgEnveloped       = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	AlgRSASHA256       = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	AlgECDSASHA256     = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
	AlgSHA256          = "http://www.w3.org/2001/04/xmlenc#sha256"
	minRSASigningBits  = 2048
	maxRSASigningBits  = 8192
	defaultMaxMsgBytes = 1 << 20
	defaultMaxDepth    = 64
)
