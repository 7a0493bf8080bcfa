package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"path/filepath"
	"time"

	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/profile"
	"github.com/nats-io/nats.go/jetstream"
)

// seedProfile is customer i's record as loaded: a known customer with a
// few standard fields, two attributes and two tags, who has applied one
// event, and whose address is in the email index.
func seedProfile(i int, t time.Time) (uuid string, rec *profile.Record) {
	uuid = fmt.Sprintf("p-%d", i)
	return uuid, &profile.Record{
		Profile: &profile.Profile{
			UUID: uuid, Email: fmt.Sprintf("p%d@example.com", i),
			Firstname: "Customer", Lastname: fmt.Sprint(i), City: "Warsaw", CountryCode: "PL",
			Attributes: map[string]any{"newsletterAgreement": "disabled", "plan": "basic"},
			Tags:       []string{"contact", "newsletter"},
			Created:    t, Updated: t,
		},
		Applied: []string{fmt.Sprintf("seed-%d", i)},
	}
}

// rssEvent is a contact form sent by customer i: herald serve reads the
// customer's profile for the built-in form step and the rules on
// form.submit; nothing changes (the customer already carries the tag
// "contact" and no rule fires), so nothing is written.
func rssEvent(profiles int) func(int) []byte {
	return func(i int) []byte {
		return fmt.Appendf(nil, `{"action":"form.submit","label":"Contact form","uuid":"p-%d","params":{"form_type":"contact"}}`, i%profiles)
	}
}

// rss is figure 5: the memory of the herald serve process with a million
// profiles, before and after a million events touching them.
func (h *harness) rss(ctx context.Context, res *Results) error {
	r := &RSS{Profiles: h.sc.Profiles, Events: h.sc.RSSEvents}
	res.RSS = r
	dir, err := h.w.dir("rss")
	if err != nil {
		return err
	}
	defer h.w.discard(dir)
	dataDir := filepath.Join(dir, "data")

	start := time.Now()
	err = embedded(ctx, filepath.Join(dataDir, "nats"), func(nres *natsbus.Resources, js jetstream.JetStream) error {
		if err := loadProfiles(ctx, js, r.Profiles); err != nil {
			return err
		}
		if err := verifyProfiles(ctx, profile.NewKV(nres.Profiles), r.Profiles); err != nil {
			return fmt.Errorf("%w (has the profile store changed how it keeps records? update loadProfiles)", err)
		}
		if info, err := nres.Profiles.Status(ctx); err != nil {
			return err
		} else if got := info.Values(); got != uint64(2*r.Profiles) {
			return fmt.Errorf("profile bucket holds %d values, want %d", got, 2*r.Profiles)
		}
		log.Printf("rss: %d profiles loaded in %s", r.Profiles, time.Since(start).Round(time.Second))
		if err := pauseConsumers(ctx, js, nres.Events); err != nil {
			return err
		}
		if err := publishAll(ctx, js, r.Events, rssEvent(r.Profiles)); err != nil {
			return err
		}
		info, err := nres.Events.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != uint64(r.Events) {
			return fmt.Errorf("stream holds %d events, want %d", info.State.Msgs, r.Events)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	r.LoadTook = time.Since(start)
	log.Printf("rss: profiles and events loaded in %s", r.LoadTook.Round(time.Second))

	p, err := startServe(ctx, h.heraldServe(), dir)
	if err != nil {
		return err
	}
	defer p.stop()
	c, err := connect(ctx, p.natsURL)
	if err != nil {
		return err
	}
	defer c.close()
	time.Sleep(time.Second)
	if r.StartRSS, _, err = p.memory(); err != nil {
		return err
	}
	t0, _, note, err := c.start(ctx, p)
	if err != nil {
		return err
	}
	if note != "" {
		r.Notes = append(r.Notes, note+"; the memory \"at start\" was read while it consumed")
	}
	for {
		left, err := c.remaining(ctx)
		if err != nil {
			return err
		}
		if left == 0 {
			r.Consumed = r.Events
			break
		}
		if time.Since(t0) > h.sc.RSSCap {
			r.Consumed = max(r.Events-int(left), 0)
			r.Notes = append(r.Notes, fmt.Sprintf("cut short after %s: %s of %s events consumed", h.sc.RSSCap, num(float64(r.Consumed)), num(float64(r.Events))))
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("herald serve exited (%v); its log ends:\n%s", p.waitErr, p.logTail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
	r.RunTook = time.Since(t0)
	r.Rate = float64(r.Consumed) / r.RunTook.Seconds()
	time.Sleep(time.Second)
	if r.AfterRSS, r.PeakRSS, err = p.memory(); err != nil {
		return err
	}
	const heap, sys = "go_memstats_heap_inuse_bytes", "go_memstats_sys_bytes"
	if m, err := p.metrics(heap, sys); err != nil {
		r.Notes = append(r.Notes, "read /metrics: "+err.Error())
	} else {
		r.HeapMB, r.SysMB = m[heap]/1e6, m[sys]/1e6
	}
	if dead, err := c.deadLetters(ctx); err == nil && dead > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d dead letters", dead))
	}
	if n := countEmails(filepath.Join(dataDir, "outbox")); n > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d emails in the outbox, want none", n))
	}
	r.StoreMB = float64(dirSize(filepath.Join(dataDir, "nats"))) / 1e6
	log.Printf("rss: %d events in %s; RSS %.0f MB at start, %.0f MB after, %.0f MB peak",
		r.Consumed, r.RunTook.Round(time.Second), r.StartRSS, r.AfterRSS, r.PeakRSS)
	return nil
}

// loadProfiles writes n customers' records (seedProfile) into the
// profile bucket, each under its key (profile.KeyOf) as the JSON the
// profile store writes (profile.KV.Put marshals the Record), and each
// address into the email index (profile.EmailKeyPrefix followed by
// profile.EmailHash, holding the owner's uuid), as profile.KV.ClaimEmail
// does. The writes are asynchronous publishes to the bucket's subjects: a
// million synchronous Puts would take minutes. verifyProfiles then reads
// records back through the profile store, so that a change in how the
// store keeps records fails here rather than measuring something else.
func loadProfiles(ctx context.Context, js jetstream.JetStream, n int) error {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prefix := "$KV." + natsbus.ProfileBucket + "."
	for i := range n {
		uuid, rec := seedProfile(i, t)
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := publishAsync(ctx, js, prefix+profile.KeyOf(uuid), data); err != nil {
			return err
		}
		if err := publishAsync(ctx, js, prefix+profile.EmailKeyPrefix+profile.EmailHash(rec.Profile.Email), []byte(uuid)); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// verifyProfiles reads some of the n records loadProfiles wrote back
// through the profile store and the email index.
func verifyProfiles(ctx context.Context, store *profile.KV, n int) error {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for k := range 50 {
		i := k * (n - 1) / 49
		uuid, want := seedProfile(i, t)
		got, _, err := store.Get(ctx, uuid)
		if err != nil {
			return fmt.Errorf("read loaded profile %s back: %w", uuid, err)
		}
		if got.Profile == nil || got.Profile.UUID != uuid || got.Profile.Email != want.Profile.Email || len(got.Profile.Tags) != len(want.Profile.Tags) {
			return fmt.Errorf("read loaded profile %s back: got %+v, want %+v", uuid, got.Profile, want.Profile)
		}
		owner, err := store.Owner(ctx, want.Profile.Email)
		if err != nil || owner != uuid {
			return fmt.Errorf("email index: owner of %s is %q (%v), want %s", want.Profile.Email, owner, err, uuid)
		}
	}
	return nil
}
