package app

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/herald-events/herald/actions/email"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/privacy"
	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/rules"
)

// Privacy returns what herald profile export, forget and consent, and
// GET /v1/profiles/{uuid}, work with under cfg: the profile store, the
// address hasher keyed by HERALD_PRIVACY_KEY and the outbox folder (none
// when emails go to an SMTP server).
func Privacy(cfg *config.Config, base privacy.Config) privacy.Config {
	base.Hasher = profile.NewHasher([]byte(config.PrivacyKey()))
	if cfg.Email.SMTP.URL == "" {
		base.Outbox = cfg.Email.Outbox
	}
	return base
}

// suppressedEmail withholds an email to an address on the suppression
// list (profile.Suppressions), whatever the rules say.
func suppressedEmail(list profile.Suppressions, h profile.Hasher) func(context.Context, rules.Effect) (string, error) {
	return func(ctx context.Context, e rules.Effect) (string, error) {
		m, ok := e.(*rules.Email)
		if !ok || strings.TrimSpace(m.To) == "" {
			return "", nil
		}
		_, err := list.Suppressed(ctx, h.Hash(m.To))
		if errors.Is(err, profile.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return "the address is on the suppression list", nil
	}
}

// exportHandler serves GET /v1/profiles/{uuid}: the export of the
// customer (privacy.Config.Export) as JSON, to a request carrying the
// admin token (Authorization: Bearer TOKEN). Without HERALD_ADMIN_TOKEN
// set, it refuses every request.
func exportHandler(p privacy.Config, token config.Secret) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if token == "" {
			http.Error(w, "the admin API is off: set "+config.EnvAdminToken+" to turn it on", http.StatusForbidden)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// Hashes of equal length, compared in constant time, tell nothing
		// of the token's length or content.
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="herald admin"`)
			http.Error(w, "a valid admin token is required (Authorization: Bearer TOKEN)", http.StatusUnauthorized)
			return
		}
		uuid := r.PathValue("uuid")
		if uuid == "" {
			http.Error(w, "uuid: missing", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		doc, err := p.Export(ctx, uuid)
		if err != nil {
			http.Error(w, "export failed: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(doc)
	})
}

// sweepOutbox deletes outbox emails older than maxAge now and then every
// sweepEvery (at most an hour, a quarter of maxAge when shorter) until
// stop is closed.
func (a *App) sweepOutbox(o *email.Outbox, maxAge time.Duration, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	every := min(time.Hour, maxAge/4)
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if n, err := o.Sweep(time.Now().Add(-maxAge)); err != nil {
				a.logger.Warn("sweep outbox; trying again later", "err", err)
			} else if n > 0 {
				a.logger.Info("outbox swept", "deleted", n, "older_than", maxAge.String())
			}
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()
	return done
}
