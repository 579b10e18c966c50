package metadata

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Paths the hub serves metadata on.
const (
	// EntitiesPath is the Metadata Query (MDQ) base: GET
	// EntitiesPath+EncodeMDQ(entityID) returns that participant's
	// descriptor, signed on its own.
	EntitiesPath = "/kecis/metadata/entities/"
	// AggregatePath returns the signed md:EntitiesDescriptor of every
	// active participant.
	AggregatePath = "/kecis/metadata"
	// MediaType is the SAML metadata media type (RFC 7669 §2 registers
	// application/samlmetadata+xml).
	MediaType = "application/samlmetadata+xml"
)

// sha1Prefix marks a transformed identifier (MDQ §2.5): "{sha1}" followed by
// the lower-case hex SHA-1 of the entityID.
const sha1Prefix = "{sha1}"

// EncodeMDQ returns entityID as one MDQ path segment: every byte except the
// RFC 3986 unreserved characters (ALPHA DIGIT - . _ ~) percent-encoded, as
// the Metadata Query protocol asks, so that "/" and ":" never split or
// confuse the path.
func EncodeMDQ(entityID string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(entityID) * 2)
	for i := 0; i < len(entityID); i++ {
		c := entityID[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// SHA1ID returns the transformed identifier of entityID: "{sha1}" and the
// lower-case hex SHA-1 of its UTF-8 bytes (MDQ §2.5, as InCommon serves it).
// SHA-1 here names, it does not sign.
func SHA1ID(entityID string) string {
	sum := sha1.Sum([]byte(entityID))
	return sha1Prefix + hex.EncodeToString(sum[:])
}

// DecodeMDQ reads the {id} path segment of an MDQ request, as it appears
// in the request URI (still percent-encoded; r.URL.EscapedPath() after
// EntitiesPath). It returns either the entityID (transformed false) or the
// transformed identifier "{sha1}<40 lower-case hex>" (transformed true),
// which a server compares with SHA1ID of its entityIDs (MatchesMDQ).
func DecodeMDQ(segment string) (id string, transformed bool, err error) {
	if segment == "" {
		return "", false, errors.New("metadata: empty MDQ identifier")
	}
	id, err = url.PathUnescape(segment)
	if err != nil {
		return "", false, fmt.Errorf("metadata: MDQ identifier: %w", err)
	}
	if rest, ok := strings.CutPrefix(id, sha1Prefix); ok {
		if len(rest) != 40 {
			return "", false, errors.New("metadata: {sha1} identifier needs 40 hex digits")
		}
		if _, err := hex.DecodeString(rest); err != nil {
			return "", false, errors.New("metadata: {sha1} identifier needs 40 hex digits")
		}
		return sha1Prefix + strings.ToLower(rest), true, nil
	}
	if err := checkEntityID(id); err != nil {
		return "", false, fmt.Errorf("metadata: MDQ identifier: %w", err)
	}
	return id, false, nil
}

// MatchesMDQ reports whether a decoded MDQ identifier names entityID.
func MatchesMDQ(id, entityID string) bool {
	if strings.HasPrefix(id, sha1Prefix) {
		return id == SHA1ID(entityID)
	}
	return id == entityID
}
