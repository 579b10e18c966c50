package conformance

// sweep judges one aspect on every exchange of the run so far.
func sweep(id, title string, a aspect, what string, sev Severity, clauses ...string) *Condition {
	return &Condition{ID: id, Title: title, Clauses: clauses, Severity: sev, Run: func(c *C) error {
		return c.checkAll(c, c.Exchanges(), a, what)
	}}
}

func responsesModule() *Module {
	return &Module{
		Name:  "responses",
		Title: "Every answer of the run",
		Description: "Every answer the participant gave during the run — to probes, card operations and attacks alike — is judged again: " +
			"standalone and of the profile's shape, signed with a key its metadata publishes, answering the request it names, with valid status codes, its sensitive elements encrypted for the requester with allowed algorithms only, " +
			"no card number in clear anywhere, faults in the form the binding fixes.",
		Conditions: []*Condition{
			sweep("responses.standalone", "Every answer is a standalone KECIS document", aspStandalone, "carried a KECIS message", SeverityFailure, "KECIS §2.5"),
			sweep("responses.shape", "Every answer has the profile's shape and signature profile", aspShape, "carried a KECIS message", SeverityFailure, "KECIS §2.3", "KECIS §4.1", "KECIS §4.2"),
			sweep("responses.signature", "Every answer verifies with the signing keys the signer's metadata publishes, and only those", aspSignature, "carried a KECIS message", SeverityFailure, "KECIS §4.3", "KECIS §5.1"),
			sweep("responses.issuer", "Every answer is issued by the participant", aspIssuer, "was verified", SeverityFailure, "KECIS §2.3"),
			sweep("responses.in-response-to", "Every answer's InResponseTo names the request it answers", aspInResponseTo, "was verified", SeverityFailure, "KECIS §2.3", "KECIS §7.1", "SAML core §3.2.2"),
			sweep("responses.status", "Every answer uses the top-level SAML codes and says why it refuses", aspStatus, "was verified", SeverityFailure, "KECIS §6.1", "KECIS §6.2"),
			sweep("responses.decrypts", "Every answer's payload decrypts and reads as ECML for the requester", aspDecrypt, "carried a KECIS message", SeverityFailure, "KECIS §8.3", "KECIS §5.1"),
			sweep("responses.encryption", "Sensitive elements in answers are encrypted for the requester, with AES-GCM and RSA-OAEP only", aspEncryption, "carried encrypted elements", SeverityFailure, "KECIS §8.1", "KECIS §8.2"),
			sweep("responses.no-clear-pan", "No Luhn-valid card number stands in clear in any answer or fault", aspNoPAN, "had a body", SeverityFailure, "KECIS §8.1"),
			sweep("responses.faults", "Faults are HTTP 500 SOAP faults, soap:Client or soap:Server, with a public category text", aspFault, "was a SOAP fault", SeverityWarning, "KECIS §10.1", "KECIS §5.3.1"),
			sweep("responses.issue-instant", "Answers are issued on time (IssueInstant within the clock skew of the suite's clock)", aspTime, "was verified", SeverityWarning, "KECIS §7.2"),
		},
	}
}
