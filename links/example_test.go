package links_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/herald-events/herald/links"
)

func Example() {
	// In production the keys come from HERALD_LINK_KEYS: the new key
	// first, the old one second until its links have expired.
	keys, err := links.ParseKeys("k2:" + strings.Repeat("A", 43) + ",k1:" + strings.Repeat("B", 43))
	if err != nil {
		fmt.Println(err)
		return
	}
	signer, err := links.NewSigner(keys...)
	if err != nil {
		fmt.Println(err)
		return
	}

	sent := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	token, err := signer.Sign(links.Claims{
		UUID:    "anna-7f3c",
		Action:  "newsletter.confirm",
		Label:   "Newsletter subscription confirmed",
		Link:    "confirm",
		Event:   "01KB0000000000000000000002",
		Rule:    "doi-request",
		Expires: sent.Add(7 * 24 * time.Hour),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	url := links.URL("http://127.0.0.1:8080", token)
	fmt.Println(strings.HasPrefix(url, "http://127.0.0.1:8080/l/v1.k2."))

	c, err := signer.Verify(token, sent.Add(time.Hour))
	fmt.Println(c.UUID, c.Action, c.Link, c.Expires, err)

	_, err = signer.Verify(token, sent.Add(8*24*time.Hour))
	fmt.Println(errors.Is(err, links.ErrExpired), err)

	_, err = signer.Verify(strings.Replace(token, "v1.k2.", "v1.k1.", 1), sent)
	fmt.Println(errors.Is(err, links.ErrInvalid), err)
	// Output:
	// true
	// anna-7f3c newsletter.confirm confirm 2026-12-05 10:00:00 +0000 UTC <nil>
	// true link token expired at 2026-12-05T10:00:00Z
	// true invalid link token: bad signature
}
