package metadata

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// xsDuration is the subset of xs:duration that metadata cacheDuration
// needs: days, hours, minutes and (fractional) seconds. Years and months
// have no fixed length and are refused.
var xsDuration = regexp.MustCompile(`^P(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+)(?:\.([0-9]{1,9}))?S)?)?$`)

// ParseDuration reads an xs:duration such as "PT1H", "P1DT12H" or
// "PT90.5S". Negative durations, years and months are refused.
func ParseDuration(s string) (time.Duration, error) {
	m := xsDuration.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		if strings.HasPrefix(s, "-") {
			return 0, fmt.Errorf("duration %q is negative", s)
		}
		if strings.ContainsAny(strings.SplitN(s, "T", 2)[0], "YM") {
			return 0, fmt.Errorf("duration %q: years and months have no fixed length; use days (P30D)", s)
		}
		return 0, fmt.Errorf("duration %q is not an xs:duration of days, hours, minutes and seconds", s)
	}
	var total float64
	var d time.Duration
	units := []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second}
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.ParseInt(m[i+1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q is out of range", s)
		}
		total += float64(n) * float64(u)
		d += time.Duration(n) * u
	}
	if m[5] != "" {
		frac := m[5] + strings.Repeat("0", 9-len(m[5]))
		ns, _ := strconv.ParseInt(frac, 10, 64)
		total += float64(ns)
		d += time.Duration(ns)
	}
	if total > math.MaxInt64/2 {
		return 0, fmt.Errorf("duration %q is out of range", s)
	}
	return d, nil
}

// FormatDuration writes d as an xs:duration in the form ParseDuration
// reads: "PT1H", "P1DT12H", "PT0.5S"; zero is "PT0S". d must not be
// negative.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteByte('P')
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d == 0 {
		return b.String()
	}
	b.WriteByte('T')
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	if d > 0 {
		sec, ns := d/time.Second, d%time.Second
		fmt.Fprintf(&b, "%d", sec)
		if ns > 0 {
			b.WriteString(strings.TrimRight(fmt.Sprintf(".%09d", ns), "0"))
		}
		b.WriteByte('S')
	}
	return b.String()
}
