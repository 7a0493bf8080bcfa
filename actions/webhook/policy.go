package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrRefused is wrapped by every error of Policy.Check and by the guarded
// dialer when it refuses an address. Such calls are never retried: the
// same URL is refused again until the configuration changes.
var ErrRefused = errors.New("refused by webhook policy")

// Policy says which URLs webhooks may call. Rule files are checked against
// it when they are loaded and every call is checked again before it is
// made, so a rendered URL cannot point somewhere the configuration did
// not allow.
type Policy struct {
	// AllowHosts lists the hosts webhooks may call (webhook.allow_hosts).
	// An entry is one of
	//
	//   - a host name, "hooks.example.com": that host on any port;
	//   - a wildcard, "*.example.com": every subdomain of example.com at
	//     any depth (a.example.com, a.b.example.com), but not example.com
	//     itself, which needs an entry of its own;
	//   - an IP address, "203.0.113.7" or "2001:db8::7" (IPv6 with or
	//     without brackets);
	//   - any of these with a port, "hooks.example.com:8443",
	//     "[2001:db8::7]:443": that host on that port only, where a URL
	//     without a port means 443 for https and 80 for http.
	//
	// Names compare case-insensitively and without a trailing dot; names
	// must be ASCII (write internationalised names in their xn-- form).
	// An empty list allows no host at all.
	AllowHosts []string
	// AllowPrivate allows addresses that are not on the public internet
	// (webhook.allow_private): loopback, private (RFC 1918), unique local
	// (fc00::/7), link-local, shared (CGNAT, 100.64.0.0/10), unspecified,
	// multicast and reserved ranges, also when embedded in IPv6 (NAT64,
	// 6to4). Off, such addresses are refused as IP literals in URLs, and
	// also when a listed host name resolves to one: the default client
	// checks every address it connects to, so DNS rebinding cannot slip a
	// private address past the check. Listing an address in AllowHosts
	// does not lift this.
	AllowPrivate bool
}

// hostPattern is one parsed AllowHosts entry.
type hostPattern struct {
	name     string     // lower case, no trailing dot; the suffix after "*." for wildcards
	addr     netip.Addr // set for IP addresses
	wildcard bool
	port     string // "" for any port
}

// parsePattern parses an AllowHosts entry; its errors do not repeat the
// entry, which the caller names.
func parsePattern(entry string) (hostPattern, error) {
	var p hostPattern
	switch {
	case entry == "":
		return p, errors.New("empty")
	case strings.Contains(entry, "://") || strings.ContainsAny(entry, "/?#@"):
		return p, errors.New("list host names, not URLs (no scheme, path or user)")
	case strings.ContainsFunc(entry, func(r rune) bool { return r <= ' ' || r > '~' }):
		return p, errors.New("only ASCII without spaces; write internationalised names in their xn-- form")
	}
	host := strings.ToLower(entry)
	switch {
	case strings.HasPrefix(host, "["):
		h, port, err := net.SplitHostPort(host)
		if err != nil {
			h, port = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), ""
			if !strings.HasSuffix(host, "]") {
				return p, errors.New("not a host, host:port, [IPv6] or [IPv6]:port")
			}
		}
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() {
			return p, errors.New("brackets hold an IPv6 address only")
		}
		p.addr, p.port = a, port
	case strings.Count(host, ":") > 1:
		a, err := netip.ParseAddr(host)
		if err != nil {
			return p, errors.New("not an IPv6 address; put IPv6 addresses with a port in brackets, as [2001:db8::1]:443")
		}
		p.addr = a
	default:
		h, port, err := net.SplitHostPort(host)
		if err != nil {
			h, port = host, ""
		}
		if a, err := netip.ParseAddr(h); err == nil {
			p.addr = a
		} else {
			p.wildcard = strings.HasPrefix(h, "*.")
			h = strings.TrimSuffix(strings.TrimPrefix(h, "*."), ".")
			if err := checkHostName(h); err != nil {
				return p, err
			}
			if p.wildcard && !strings.Contains(h, ".") {
				return p, fmt.Errorf("the wildcard *.%s would allow a whole top-level domain; name the domain, as *.example.com", h)
			}
			p.name = h
		}
		p.port = port
	}
	if p.port != "" {
		if !validPort(p.port) {
			return p, fmt.Errorf("port %q is not between 1 and 65535", p.port)
		}
	}
	if p.addr.IsValid() {
		p.addr = p.addr.Unmap()
	}
	return p, nil
}

// checkHostName accepts a DNS name of letters, digits, '-' and '_' in
// dot-separated labels, whose last label is not all digits (that would be
// an IP address in a non-standard form, such as 2130706433 or 127.1).
func checkHostName(h string) error {
	if h == "" || len(h) > 253 {
		return errors.New("not a valid host name")
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errors.New("not a valid host name (empty or overlong label)")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				if c == '*' {
					return errors.New(`a wildcard is allowed only as the first label, as "*.example.com"`)
				}
				return errors.New("not a valid host name")
			}
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") {
		return errors.New("looks like an IP address in a non-standard form; write IPv4 addresses as four decimal numbers")
	}
	return nil
}

// validPort reports whether s is a decimal port between 1 and 65535.
func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535 && strings.Trim(s, "0123456789") == ""
}

// Validate reports every AllowHosts entry that is not one of the forms
// AllowHosts describes, each naming webhook.allow_hosts and its index.
// Check never matches such an entry.
func (p Policy) Validate() error {
	var errs []error
	for i, entry := range p.AllowHosts {
		if _, err := parsePattern(entry); err != nil {
			errs = append(errs, fmt.Errorf("webhook.allow_hosts[%d] %q: %w", i, entry, err))
		}
	}
	return errors.Join(errs...)
}

// target is what Check needs of a URL.
type target struct {
	host string     // lower case, no trailing dot, no brackets or zone
	addr netip.Addr // set when the host is an IP literal
	port string     // explicit or the scheme's default
}

// parseTarget parses an absolute http or https URL. Its errors name the
// host at most, never the whole URL, whose query may hold a token.
func parseTarget(rawURL string) (target, error) {
	var t target
	u, err := url.Parse(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return t, fmt.Errorf("%w: not a valid URL: %w", ErrRefused, err)
	}
	switch u.Scheme {
	case "https", "http":
	case "":
		return t, fmt.Errorf("%w: no scheme; the URL must start with https:// or http://", ErrRefused)
	default:
		return t, fmt.Errorf("%w: scheme %q is not https or http", ErrRefused, u.Scheme)
	}
	if u.Opaque != "" {
		return t, fmt.Errorf("%w: not an absolute URL; write %s://host/path", ErrRefused, u.Scheme)
	}
	if u.User != nil {
		return t, fmt.Errorf("%w: credentials do not belong in the URL; send them in a header from webhook.headers", ErrRefused)
	}
	host := u.Hostname()
	if host == "" {
		return t, fmt.Errorf("%w: no host", ErrRefused)
	}
	switch t.port = u.Port(); {
	case t.port == "" && u.Scheme == "https":
		t.port = "443"
	case t.port == "":
		t.port = "80"
	case !validPort(t.port):
		return t, fmt.Errorf("%w: host %q: port %q is not between 1 and 65535", ErrRefused, host, t.port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		t.addr = a.WithZone("").Unmap()
		t.host = t.addr.String()
		return t, nil
	}
	if strings.ContainsFunc(host, func(r rune) bool { return r > '~' }) {
		return t, fmt.Errorf("%w: host %q is not ASCII; write it in its xn-- form", ErrRefused, host)
	}
	t.host = strings.TrimSuffix(strings.ToLower(host), ".")
	if err := checkHostName(t.host); err != nil {
		return t, fmt.Errorf("%w: host %q: %w", ErrRefused, host, err)
	}
	return t, nil
}

// matches reports whether an AllowHosts entry names t's host, and whether
// it also allows t's port.
func (p hostPattern) matches(t target) (host, port bool) {
	switch {
	case p.addr.IsValid():
		host = t.addr.IsValid() && p.addr.WithZone("") == t.addr
	case p.wildcard:
		host = !t.addr.IsValid() && strings.HasSuffix(t.host, "."+p.name)
	default:
		host = !t.addr.IsValid() && t.host == p.name
	}
	return host, host && (p.port == "" || p.port == t.port)
}

// Check reports whether a webhook may call rawURL: an absolute https or
// http URL without credentials, whose host is in AllowHosts and, when it
// is an IP address, not a private one unless AllowPrivate. Errors wrap
// ErrRefused, name the host (never the whole URL, whose query may hold a
// token) and say which setting would allow the call. Check does not
// resolve names; the default client's dialer checks the addresses a name
// resolves to when it connects.
func (p Policy) Check(rawURL string) error {
	t, err := parseTarget(rawURL)
	if err != nil {
		return err
	}
	listed, otherPort := false, false
	for _, entry := range p.AllowHosts {
		pat, err := parsePattern(entry)
		if err != nil {
			continue
		}
		host, port := pat.matches(t)
		listed = listed || port
		otherPort = otherPort || host && !port
	}
	kind, private := "", false
	if t.addr.IsValid() && !p.AllowPrivate {
		kind, private = special(t.addr)
	}
	hostPort := net.JoinHostPort(t.host, t.port)
	switch {
	case private && listed:
		return fmt.Errorf("%w: host %q is %s; set webhook.allow_private: true to call it", ErrRefused, t.host, kind)
	case private:
		return fmt.Errorf("%w: host %q is %s and not in webhook.allow_hosts; add it there and set webhook.allow_private: true to call it", ErrRefused, t.host, kind)
	case listed:
		return nil
	case otherPort:
		return fmt.Errorf("%w: host %q is in webhook.allow_hosts only with other ports; add %q there to allow port %s", ErrRefused, t.host, hostPort, t.port)
	default:
		return fmt.Errorf("%w: host %q is not in webhook.allow_hosts; add it there to allow calls to it", ErrRefused, t.host)
	}
}

// DialControl is a net.Dialer Control function that refuses connections
// to the addresses AllowPrivate describes, unless AllowPrivate is set.
// The default client uses it; a custom Config.Client should too:
//
//	dialer := &net.Dialer{Control: policy.DialControl}
func (p Policy) DialControl(_, address string, _ syscall.RawConn) error {
	if p.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot tell whether %q is a public address", ErrRefused, address)
	}
	if kind, ok := special(ap.Addr()); ok {
		return fmt.Errorf("%w: %s is %s; set webhook.allow_private: true to call it", ErrRefused, ap.Addr().WithZone(""), kind)
	}
	return nil
}

// specialRange is a range of addresses that are not on the public
// internet, with how to name them.
type specialRange struct {
	prefix netip.Prefix
	kind   string
}

// specialRanges are refused unless AllowPrivate; the first match names
// the kind. IPv4-mapped IPv6 addresses are unmapped before.
var specialRanges = []specialRange{
	{netip.MustParsePrefix("0.0.0.0/32"), "an unspecified address"},
	{netip.MustParsePrefix("0.0.0.0/8"), `a "this network" address`},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (CGNAT) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "a reserved address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a reserved (benchmarking) address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("::/128"), "an unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("::/96"), "a reserved (IPv4-compatible) address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a reserved (local NAT64) address"},
	{netip.MustParsePrefix("100::/64"), "a reserved (discard) address"},
	{netip.MustParsePrefix("fc00::/7"), "a unique local address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
}

// IPv6 ranges that embed an IPv4 address, which is checked in turn.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// special reports whether a is not a public internet address, and what
// kind of address it is.
func special(a netip.Addr) (kind string, ok bool) {
	a = a.WithZone("").Unmap()
	for _, r := range specialRanges {
		if r.prefix.Contains(a) {
			return r.kind, true
		}
	}
	var v4 [4]byte
	b := a.As16()
	switch {
	case nat64.Contains(a):
		copy(v4[:], b[12:16])
	case sixToFour.Contains(a):
		copy(v4[:], b[2:6])
	default:
		return "", false
	}
	embedded := netip.AddrFrom4(v4)
	if kind, ok := special(embedded); ok {
		return fmt.Sprintf("%s (%s embedded in IPv6)", kind, embedded), true
	}
	return "", false
}
