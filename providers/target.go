package providers

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Callback targets. A callbackUrl is an address the worker will POST to
// from inside the cluster, so it must not reach the worker's own
// neighbourhood: loopback (its Redis, its admin listener), private and
// shared (carrier-grade NAT) networks, unless the setting
// CALLBACK_ALLOW_PRIVATE allows them; and never link-local addresses (the
// cloud metadata service at 169.254.169.254), the unspecified address,
// multicast or broadcast. Submit refuses a literal address of a refused
// range (CheckCallbackTarget); delivery refuses a name that resolves to
// one (the dialer checks the address it is about to connect to).

// cgnat is the shared address space of RFC 6598, not covered by
// netip.Addr.IsPrivate.
var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")
	broadcast = netip.MustParseAddr("255.255.255.255")
)

// RefusedTarget says why a callback may not be delivered to ip ("" when
// it may). allowPrivate (CALLBACK_ALLOW_PRIVATE) lets loopback, private
// and shared addresses through; link-local, unspecified, multicast and
// broadcast addresses are always refused.
func RefusedTarget(ip netip.Addr, allowPrivate bool) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "not an IP address"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "a link-local address"
	case ip.IsUnspecified() || thisNet.Contains(ip):
		return "an unspecified address"
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || ip == broadcast:
		return "a multicast or broadcast address"
	case allowPrivate:
		return ""
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsPrivate() || cgnat.Contains(ip):
		return "a private address"
	}
	return ""
}

// CheckCallbackTarget checks the host of a callbackUrl that Validate
// accepted: a literal IP address (or localhost) of a refused range is a
// *FieldError on callbackUrl. A name is checked when delivered, against
// the address it resolves to.
func CheckCallbackTarget(raw string, allowPrivate bool) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &FieldError{Field: "callbackUrl", Reason: "must be an absolute http(s) URL"}
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if !allowPrivate && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		return &FieldError{Field: "callbackUrl", Reason: "must not point at localhost (set CALLBACK_ALLOW_PRIVATE=1 to allow loopback and private targets)"}
	}
	ip, perr := netip.ParseAddr(host)
	if perr != nil || !ip.IsValid() {
		return nil //nolint:nilerr // a name, not an address: checked at delivery
	}
	if why := RefusedTarget(ip, allowPrivate); why != "" {
		hint := ""
		if RefusedTarget(ip, true) == "" {
			hint = " (set CALLBACK_ALLOW_PRIVATE=1 to allow loopback and private targets)"
		}
		return &FieldError{Field: "callbackUrl", Reason: "must not point at " + why + hint}
	}
	return nil
}

// checkCallbackURL is Validate's check of a callbackUrl: an absolute
// http(s) URL with a host, no user name or password, at most
// MaxCallbackURL bytes.
func checkCallbackURL(raw string) string {
	if len(raw) > MaxCallbackURL {
		return fmt.Sprintf("must be at most %d bytes", MaxCallbackURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "must be an absolute http(s) URL"
	}
	if u.User != nil {
		return "must not hold a user name or password"
	}
	if Unsafe(raw) != "" {
		return "must not hold control characters"
	}
	return ""
}
