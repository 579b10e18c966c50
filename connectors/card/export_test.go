package card

// VerificationPayload exposes the payload ApproveVerification sends, for
// the tests of what travels (the SDK encrypts its sensitive elements).
var VerificationPayload = verificationPayload
