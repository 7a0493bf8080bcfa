package webhook_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/herald-events/herald/actions/webhook"
)

func TestPolicyCheck(t *testing.T) {
	policy := webhook.Policy{AllowHosts: []string{
		"crm.example.com",
		"*.hooks.example.net",
		"api.example.org:8443",
		"203.0.113.7",
		"[2001:db8::7]:443",
		"Upper.Example.COM.",
		"127.0.0.1", // listed, but private: needs AllowPrivate too
		"[::1]",
		"10.1.2.3:8080",
	}}
	private := policy
	private.AllowPrivate = true

	cases := []struct {
		name   string
		policy webhook.Policy
		url    string
		want   []string // parts of the error; nil means allowed
	}{
		{"listed host", policy, "https://crm.example.com/hooks/herald?list=news", nil},
		{"listed host, http, any port", policy, "http://crm.example.com:8080/x", nil},
		{"listed host, upper case, trailing dot", policy, "https://CRM.Example.com./x", nil},
		{"entry in upper case with a trailing dot", policy, "https://upper.example.com/", nil},
		{"wildcard subdomain", policy, "https://eu.hooks.example.net/x", nil},
		{"wildcard, deeper subdomain", policy, "https://a.b.hooks.example.net/x", nil},
		{"wildcard does not cover its apex", policy, "https://hooks.example.net/x", []string{`host "hooks.example.net" is not in webhook.allow_hosts`}},
		{"wildcard is not a suffix match", policy, "https://evilhooks.example.net/x", []string{`host "evilhooks.example.net" is not in webhook.allow_hosts`}},
		{"listed port", policy, "https://api.example.org:8443/x", nil},
		{"other port", policy, "https://api.example.org/x", []string{`only with other ports`, `add "api.example.org:443"`}},
		{"public IPv4 literal", policy, "http://203.0.113.7/x", nil},
		{"IPv6 literal with its port as default", policy, "https://[2001:db8::7]/x", nil},
		{"IPv6 literal, other port", policy, "http://[2001:db8::7]/x", []string{"only with other ports", `"[2001:db8::7]:80"`}},
		{"not listed", policy, "https://evil.example/x", []string{`host "evil.example" is not in webhook.allow_hosts; add it there`}},
		{"listed name as a subdomain of another", policy, "https://crm.example.com.evil.example/", []string{"not in webhook.allow_hosts"}},
		{"empty list", webhook.Policy{}, "https://crm.example.com/", []string{"not in webhook.allow_hosts"}},

		{"loopback v4, listed", policy, "http://127.0.0.1:8080/", []string{`host "127.0.0.1" is a loopback address; set webhook.allow_private: true`}},
		{"loopback v4, listed, allowed", private, "http://127.0.0.1:8080/", nil},
		{"loopback v6, listed", policy, "http://[::1]:8080/", []string{`host "::1" is a loopback address`}},
		{"loopback v6, listed, allowed", private, "http://[::1]:8080/", nil},
		{"private v4, not listed", policy, "http://192.168.1.1/", []string{`host "192.168.1.1" is a private address and not in webhook.allow_hosts; add it there and set webhook.allow_private: true`}},
		{"private v4, listed port, allowed", private, "http://10.1.2.3:8080/", nil},
		{"private v4 allowed, but not listed", private, "http://10.9.9.9/", []string{`host "10.9.9.9" is not in webhook.allow_hosts`}},
		{"other loopback v4", policy, "http://127.8.9.10/", []string{"loopback"}},
		{"10/8", policy, "http://10.0.0.1/", []string{"private"}},
		{"172.16/12", policy, "http://172.31.255.255/", []string{"private"}},
		{"link-local (cloud metadata)", policy, "http://169.254.169.254/latest/meta-data/", []string{"link-local"}},
		{"CGNAT", policy, "http://100.64.0.1/", []string{"CGNAT"}},
		{"unspecified v4", policy, "http://0.0.0.0/", []string{"unspecified"}},
		{"multicast v4", policy, "http://224.0.0.1/", []string{"multicast"}},
		{"broadcast", policy, "http://255.255.255.255/", []string{"reserved"}},
		{"unspecified v6", policy, "http://[::]/", []string{"unspecified"}},
		{"ULA v6", policy, "http://[fd00::1]/", []string{"unique local"}},
		{"link-local v6 with zone", policy, "http://[fe80::1%25eth0]/", []string{"link-local"}},
		{"multicast v6", policy, "http://[ff02::1]/", []string{"multicast"}},
		{"IPv4-mapped loopback", policy, "http://[::ffff:127.0.0.1]/", []string{"loopback"}},
		{"NAT64 of a private address", policy, "http://[64:ff9b::a00:1]/", []string{"private address (10.0.0.1 embedded in IPv6)"}},
		{"6to4 of loopback", policy, "http://[2002:7f00:1::]/", []string{"loopback address (127.0.0.1 embedded"}},
		{"decimal IPv4", policy, "http://2130706433/", []string{"non-standard form"}},
		{"short IPv4", policy, "http://127.1/", []string{"non-standard form"}},

		{"ftp", policy, "ftp://crm.example.com/x", []string{`scheme "ftp" is not https or http`}},
		{"javascript", policy, "javascript:alert(1)", []string{`scheme "javascript" is not https or http`}},
		{"file", policy, "file:///etc/passwd", []string{`scheme "file"`}},
		{"no scheme", policy, "crm.example.com/x", []string{"no scheme"}},
		{"scheme-relative", policy, "//crm.example.com/x", []string{"no scheme"}},
		{"opaque", policy, "https:crm.example.com", []string{"not an absolute URL"}},
		{"user info", policy, "https://user:pass@crm.example.com/", []string{"credentials do not belong in the URL"}},
		{"user only", policy, "https://user@crm.example.com/", []string{"credentials do not belong in the URL"}},
		{"no host", policy, "https:///x", []string{"no host"}},
		{"port 0", policy, "https://crm.example.com:0/", []string{`port "0" is not between 1 and 65535`}},
		{"port too big", policy, "https://crm.example.com:65536/", []string{`port "65536"`}},
		{"not a URL", policy, "https://crm.example.com:x/", []string{"not a valid URL"}},
		{"non-ASCII host", policy, "https://bücher.example/", []string{"not ASCII"}},
		{"empty", policy, "", []string{"no scheme"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.policy.Check(c.url)
			if c.want == nil {
				if err != nil {
					t.Errorf("Check(%q) = %v, want allowed", c.url, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%q) allowed it, want an error", c.url)
			}
			if !errors.Is(err, webhook.ErrRefused) {
				t.Errorf("Check(%q) = %v, does not match ErrRefused", c.url, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check(%q) = %q, does not say %q", c.url, err, w)
				}
			}
			if strings.Contains(err.Error(), "pass") {
				t.Errorf("Check(%q) = %q, repeats the password", c.url, err)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	good := []string{
		"crm.example.com", "*.example.com", "crm.example.com:8443", "*.example.com:443",
		"203.0.113.7", "203.0.113.7:8080", "2001:db8::7", "[2001:db8::7]", "[2001:db8::7]:443",
		"localhost", "EXAMPLE.COM.", "under_score.example.com",
	}
	if err := (webhook.Policy{AllowHosts: good}).Validate(); err != nil {
		t.Errorf("Validate(%q) = %v, want nil", good, err)
	}
	cases := []struct {
		entry string
		want  string
	}{
		{"", "empty"},
		{"https://crm.example.com", "not URLs"},
		{"crm.example.com/hooks", "not URLs"},
		{"user@crm.example.com", "not URLs"},
		{"crm example.com", "only ASCII without spaces"},
		{"bücher.example", "xn--"},
		{"*", "wildcard is allowed only as the first label"},
		{"a.*.example.com", "wildcard is allowed only as the first label"},
		{"*.com", "whole top-level domain"},
		{"crm.example.com:0", `port "0"`},
		{"crm.example.com:http", `port "http"`},
		{"[crm.example.com]:443", "IPv6 address only"},
		{"[2001:db8::7", "not a host"},
		{"2001:db8::7:443x", "not an IPv6 address"},
		{"crm..example.com", "not a valid host name"},
		{"127.1", "non-standard form"},
		{"crm.example.com:443:1", "not an IPv6 address"},
	}
	for _, c := range cases {
		t.Run(c.entry, func(t *testing.T) {
			err := webhook.Policy{AllowHosts: []string{"ok.example", c.entry}}.Validate()
			if err == nil {
				t.Fatalf("Validate(%q) = nil, want an error", c.entry)
			}
			for _, w := range []string{"webhook.allow_hosts[1] ", c.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate(%q) = %q, does not say %q", c.entry, err, w)
				}
			}
		})
	}
}

func TestDialControl(t *testing.T) {
	cases := []struct {
		address string
		refused string // kind named in the error; "" when allowed
	}{
		{"93.184.215.14:443", ""},
		{"[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:443", ""},
		{"127.0.0.1:80", "loopback"},
		{"[::1]:80", "loopback"},
		{"10.0.0.5:443", "private"},
		{"192.168.0.1:443", "private"},
		{"169.254.169.254:80", "link-local"},
		{"[fe80::1%eth0]:80", "link-local"},
		{"[fd12:3456::1]:443", "unique local"},
		{"100.100.100.100:443", "CGNAT"},
		{"0.0.0.0:80", "unspecified"},
		{"[::]:80", "unspecified"},
		{"[::ffff:10.0.0.1]:80", "private"},
		{"[64:ff9b::7f00:1]:80", "loopback"},
		{"not-an-address", "cannot tell"},
	}
	for _, c := range cases {
		t.Run(c.address, func(t *testing.T) {
			err := webhook.Policy{}.DialControl("tcp", c.address, nil)
			switch {
			case c.refused == "" && err != nil:
				t.Errorf("DialControl(%s) = %v, want allowed", c.address, err)
			case c.refused != "" && (!errors.Is(err, webhook.ErrRefused) || !strings.Contains(err.Error(), c.refused)):
				t.Errorf("DialControl(%s) = %v, want ErrRefused naming %q", c.address, err, c.refused)
			}
			if err := (webhook.Policy{AllowPrivate: true}).DialControl("tcp", c.address, nil); err != nil {
				t.Errorf("DialControl(%s) with AllowPrivate = %v, want allowed", c.address, err)
			}
		})
	}
}
