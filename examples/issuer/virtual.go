package issuer

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kecis/kecis/connectors/vcn"
	"github.com/kecis/kecis/ecml"
)

// VirtualConfig configures the issuer's virtual card numbers (KECIS §15.4,
// connectors/vcn in the issuer's own database).
type VirtualConfig struct {
	// Disabled turns virtual numbers off: IssueVirtual answers
	// NOT_ENROLLED and no BIN is virtual.
	Disabled bool `json:"disabled,omitempty"`
	// BINs maps a virtual card type (credit, check, prepaid, other) to its
	// six-digit virtual BIN; connectors/vcn's defaults (credit 404143, the
	// paper's) when nil. They must differ from Config.BINs.
	BINs map[string]string `json:"bins,omitempty"`
	// PoolSize is the number of serials per BIN and day; vcn's maximum
	// when 0 (tests use small pools).
	PoolSize int `json:"pool_size,omitempty"`
	// DefaultLifetime is a number's life when no expiry is asked; vcn's
	// default (30 minutes) when 0.
	DefaultLifetime time.Duration `json:"default_lifetime,omitempty"`
	// PoolKey and HashKey (32 bytes each) key the serial pool's
	// permutation and the numbers' look-up hashes; derived from
	// Config.Pepper (HKDF-SHA256) when nil.
	PoolKey []byte `json:"pool_key,omitempty"`
	HashKey []byte `json:"hash_key,omitempty"`
}

// openVirtual opens the virtual number service on the issuer's database.
func (i *Issuer) openVirtual(ctx context.Context) error {
	cfg := i.virtualCfg
	if cfg.Disabled {
		return nil
	}
	for _, b := range cfg.BINs {
		for t, own := range i.bins {
			if b == own {
				return fmt.Errorf("issuer: config: virtual BIN %s is the BIN of the %s cards", b, t)
			}
		}
	}
	var err error
	if cfg.PoolKey == nil {
		if cfg.PoolKey, err = hkdf.Key(sha256.New, i.vault.pepper, nil, "kecis/examples/issuer/vcn-pool", 32); err != nil {
			return fmt.Errorf("issuer: vcn keys: %w", err)
		}
	}
	if cfg.HashKey == nil {
		if cfg.HashKey, err = hkdf.Key(sha256.New, i.vault.pepper, nil, "kecis/examples/issuer/vcn-hash", 32); err != nil {
			return fmt.Errorf("issuer: vcn keys: %w", err)
		}
	}
	s, err := vcn.Open(ctx, i.db, vcn.Config{BINs: maps.Clone(cfg.BINs), Location: i.loc, PoolKey: cfg.PoolKey,
		HashKey: cfg.HashKey, Sealer: domainSealer{v: i.vault, domain: "vcn"}, PoolSize: cfg.PoolSize,
		DefaultLifetime: cfg.DefaultLifetime, Now: i.authNow, Rand: i.rand, Log: i.log})
	if err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	for _, b := range s.BINs() {
		for t, own := range i.bins {
			if b == own {
				return fmt.Errorf("issuer: config: virtual BIN %s is the BIN of the %s cards", b, t)
			}
		}
	}
	i.vcn = s
	return nil
}

// VirtualBINs returns the issuer's virtual BINs by virtual card type
// (credit, check, prepaid, other), to publish among its BINs: an approval
// with a number under one of them is de-tokenised by the issuer. Nil when
// virtual numbers are disabled.
func (i *Issuer) VirtualBINs() map[string]string {
	if i.vcn == nil {
		return nil
	}
	return i.vcn.BINs()
}

// AllBINs returns the BINs of the issuer's cards and of its virtual
// numbers, sorted.
func (i *Issuer) AllBINs() []string {
	var out []string
	for _, b := range i.bins {
		out = append(out, b)
	}
	for _, b := range i.VirtualBINs() {
		out = append(out, b)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// virtualType is the virtual card type of a card type.
func virtualType(t CardType) string {
	switch t {
	case Credit:
		return ecml.VirtualCardCredit
	case Check:
		return ecml.VirtualCardCheck
	case Prepaid:
		return ecml.VirtualCardPrepaid
	}
	return ecml.VirtualCardOther
}

// IssueVirtual issues a virtual number for an active card (KECIS §15.4):
// under the virtual BIN of the card's type, with the controls given
// (single use, the merchant it is locked to, the amount cap and its
// currency, its expiry — clamped by connectors/vcn). The issuer keeps the
// mapping to the real card; an approval with the number is de-tokenised
// inside the approval's transaction and checked against the controls.
// The number prints masked; it is shown to whom the caller shows it.
// Errors: NOT_FOUND, DECLINED (the card is not active), EXPIRED,
// NOT_ENROLLED (virtual numbers disabled or no BIN for the type),
// INVALID_REQUEST (controls), LIMIT_EXCEEDED (the day's pool is spent).
func (i *Issuer) IssueVirtual(ctx context.Context, cardID string, c vcn.Controls) (*vcn.Issued, error) {
	if i.vcn == nil {
		return nil, newError(CodeNotEnrolled, "this issuer issues no virtual numbers")
	}
	card, sealed, err := i.cardWithSealed(ctx, cardID)
	if err != nil {
		return nil, err
	}
	if card.Status != CardActive {
		return nil, newError(CodeDeclined, "card "+string(card.Status))
	}
	if i.expired(card.ExpMonth, card.ExpYear, i.now()) {
		return nil, newError(CodeExpired, "card expired")
	}
	// A number's day and expiry follow the authentication clock
	// (Config.AuthNow), as connectors/vcn's does.
	now := i.authNow()
	if c.Currency != "" && c.Currency != card.Currency {
		return nil, invalid("the card pays in " + card.Currency)
	}
	// Never past the card's own expiry.
	end := time.Date(card.ExpYear, time.Month(card.ExpMonth)+1, 1, 0, 0, 0, 0, i.loc)
	if (c.NotOnOrAfter.IsZero() && now.Add(i.virtualLifetime()).After(end)) || c.NotOnOrAfter.After(end) {
		c.NotOnOrAfter = end
	}
	pan, err := i.vault.openPAN(card.ID, sealed)
	if err != nil {
		return nil, err
	}
	typ := virtualType(card.Type)
	if _, ok := i.vcn.BINs()[typ]; !ok {
		return nil, newError(CodeNotEnrolled, "no virtual BIN for "+string(card.Type)+" cards")
	}
	v, err := i.vcn.Issue(ctx, card.ID, ecml.PAN(pan), typ, c)
	switch {
	case errors.Is(err, vcn.ErrInvalid):
		return nil, invalid(publicVCN(err))
	case errors.Is(err, vcn.ErrExhausted):
		return nil, newError(CodeLimitExceeded, "no virtual number left today for this card type; try again tomorrow")
	case err != nil:
		return nil, err
	}
	i.log.InfoContext(ctx, "virtual number issued", "card", card.ID, "virtual", v.Number, "single_use", v.Controls.SingleUse,
		"merchant", v.Controls.Merchant, "cap", v.Controls.MaxAmount, "currency", v.Controls.Currency,
		"not_on_or_after", v.Controls.NotOnOrAfter)
	return v, nil
}

func (i *Issuer) virtualLifetime() time.Duration {
	if d := i.virtualCfg.DefaultLifetime; d > 0 {
		return d
	}
	return vcn.DefaultLifetime
}

// publicVCN is a vcn error's message without its package prefix.
func publicVCN(err error) string {
	s := err.Error()
	if len(s) > 5 && s[:5] == "vcn: " {
		return s[5:]
	}
	return s
}

// virtualDecline is the decline of an approval with a virtual number that
// vcn refused, or nil and the error for a failure.
func virtualDecline(err error) (Code, string, bool) {
	switch {
	case errors.Is(err, vcn.ErrUnknown):
		return CodeInvalidCard, "unknown card number", true
	case errors.Is(err, vcn.ErrExpired):
		return CodeExpired, "the virtual card number has expired", true
	case errors.Is(err, vcn.ErrUsed):
		return CodeDeclined, "the single-use virtual card number was already used", true
	case errors.Is(err, vcn.ErrRevoked):
		return CodeDeclined, "the virtual card number was revoked", true
	case errors.Is(err, vcn.ErrMerchant):
		return CodeDeclined, "the virtual card number is locked to another merchant", true
	case errors.Is(err, vcn.ErrCurrency):
		return CodeDeclined, "the virtual card number is for another currency", true
	case errors.Is(err, vcn.ErrAmount):
		return CodeLimitExceeded, "the amount is above the virtual card number's cap", true
	}
	return "", "", false
}
