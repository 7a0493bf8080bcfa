// Package site holds the web sites that send events to Herald, each with
// its public write key, the origins its pages are served from, and the
// allow and deny lists of the actions it may send. The HTTP collector
// looks sites up by write key; the consumer holds events that name a site
// to the same lists, whichever way they arrived.
package site

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Site is one web site.
type Site struct {
	// Name is stamped on the site's events as their site.
	Name string
	// WriteKey identifies the site to the collector; it is public.
	WriteKey string
	// Origins are the origins (scheme://host[:port]) allowed to send
	// events from a browser. Empty: none.
	Origins []string
	// Allow and Deny are action patterns (path.Match syntax, such as
	// page.* or product.view). An empty Allow allows every action; Deny
	// wins over Allow.
	Allow, Deny []string
}

// Allows reports whether the site may send action, and if not why, as a
// bounded reason for metrics and answers: "denied" (a Deny pattern
// matched) or "not_allowed" (no Allow pattern matched).
func (s *Site) Allows(action string) (ok bool, reason string) {
	for _, p := range s.Deny {
		if match(p, action) {
			return false, "denied"
		}
	}
	if len(s.Allow) == 0 {
		return true, ""
	}
	for _, p := range s.Allow {
		if match(p, action) {
			return true, ""
		}
	}
	return false, "not_allowed"
}

// AllowsOrigin reports whether a browser page served from origin may send
// events for the site. The comparison ignores case and a trailing slash.
func (s *Site) AllowsOrigin(origin string) bool {
	o := canonOrigin(origin)
	if o == "" {
		return false
	}
	for _, a := range s.Origins {
		if canonOrigin(a) == o {
			return true
		}
	}
	return false
}

func canonOrigin(o string) string {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(o), "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

func match(pattern, action string) bool {
	ok, err := path.Match(pattern, action)
	return err == nil && ok
}

// Set is the sites Herald knows. The zero Set has none. It is not changed
// once built and is safe for concurrent use.
type Set struct {
	byKey  map[string]*Site
	byName map[string]*Site
}

// NewSet checks the sites and indexes them. Names and write keys must be
// unique, and every pattern valid.
func NewSet(sites ...Site) (*Set, error) {
	set := &Set{byKey: make(map[string]*Site, len(sites)), byName: make(map[string]*Site, len(sites))}
	for i := range sites {
		s := &sites[i]
		if s.WriteKey == "" || s.Name == "" {
			return nil, fmt.Errorf("site %d: a site needs a name and a write key", i)
		}
		if set.byKey[s.WriteKey] != nil {
			return nil, fmt.Errorf("site %q: write key used by site %q too", s.Name, set.byKey[s.WriteKey].Name)
		}
		if set.byName[s.Name] != nil {
			return nil, fmt.Errorf("site %q: named twice", s.Name)
		}
		for _, p := range append(append([]string(nil), s.Allow...), s.Deny...) {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("site %q: pattern %q: %w", s.Name, p, err)
			}
		}
		set.byKey[s.WriteKey] = s
		set.byName[s.Name] = s
	}
	return set, nil
}

// ByKey returns the site with the write key, or nil.
func (s *Set) ByKey(key string) *Site {
	if s == nil {
		return nil
	}
	return s.byKey[key]
}

// ByName returns the site named name, or nil.
func (s *Set) ByName(name string) *Site {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// Len is the number of sites.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byKey)
}
