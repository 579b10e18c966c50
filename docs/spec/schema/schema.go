// Package schema holds the KECIS 1.0 XML Schemas (docs/spec/schema/):
// kecis.xsd (urn:kecis:protocol:1.0: messages, authentication results,
// signed records; it includes kecis-metadata.xsd, the participant
// descriptor of KECIS §11), kecis-ecml-ext.xsd (urn:kecis:ecml-ext:1.0,
// KECIS §14.1, §14.5), ecml-v2.xsd (ECML v2's Ecom, RFC 4112, no namespace)
// and kecis-all.xsd, the driver that imports them all with the SAML, XML
// Signature and XML Encryption schemas, so that it validates any KECIS
// document root. catalog.xml maps the OASIS and W3C schemas to the copies
// Debian packages (opensaml-schemas, xmltooling-schemas), so validation
// needs no network:
//
//	XML_CATALOG_FILES=docs/spec/schema/catalog.xml \
//	  xmllint --nonet --noout --schema docs/spec/schema/kecis-all.xsd message.xml
package schema

import "embed"

// FS holds the schema files and the catalog, by their names in this
// directory (kecis-all.xsd, kecis.xsd, catalog.xml, …).
//
//go:embed *.xsd catalog.xml
var FS embed.FS
