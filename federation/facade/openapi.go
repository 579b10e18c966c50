package facade

import _ "embed"

// OpenAPI is the facade's OpenAPI 3 description, served at
// GET /v1/openapi.json and checked against the handlers by the tests.
//
//go:embed openapi.json
var OpenAPI []byte
