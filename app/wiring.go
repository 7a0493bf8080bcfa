package app

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/herald-events/herald/actions"
	"github.com/herald-events/herald/actions/email"
	"github.com/herald-events/herald/actions/emit"
	"github.com/herald-events/herald/actions/timer"
	"github.com/herald-events/herald/actions/webhook"
	"github.com/herald-events/herald/config"
	"github.com/herald-events/herald/links"
	"github.com/herald-events/herald/natsbus"
	"github.com/herald-events/herald/rules"
	"github.com/herald-events/herald/site"
)

// This file is the one wiring place of action kinds and effectors: adding
// an action means one line in Kinds and one in Effectors.

// Kinds returns the action kinds rules may use under cfg.
func Kinds(cfg *config.Config) []rules.Kind {
	return append(rules.Builtin(),
		webhook.Kind(webhookPolicy(cfg)),
	)
}

// LoadRules loads the rule files paths (cfg.Rules when none) with the
// action kinds of cfg.
func LoadRules(cfg *config.Config, paths ...string) (*rules.Set, error) {
	if len(paths) == 0 {
		paths = cfg.Rules
	}
	if err := webhookPolicy(cfg).Validate(); err != nil {
		return nil, err
	}
	return rules.Loader{Kinds: Kinds(cfg)}.Load(paths...)
}

func webhookPolicy(cfg *config.Config) webhook.Policy {
	return webhook.Policy{AllowHosts: cfg.Webhook.AllowHosts, AllowPrivate: cfg.Webhook.AllowPrivate}
}

// Effectors builds the effectors of every action kind: emails through
// mailer, emitted events through pub, timers through timers, webhooks as
// cfg says.
func Effectors(cfg *config.Config, mailer email.Sender, pub emit.Publisher, timers timer.Scheduler) (actions.Registry, error) {
	mail, err := email.NewEffector(mailer, cfg.Email.From, cfg.Email.ReplyTo)
	if err != nil {
		return nil, err
	}
	hook, err := webhook.New(webhook.Config{
		Secret:  webhook.Secret(cfg.Webhook.Secret),
		Headers: cfg.Webhook.Headers,
		Timeout: time.Duration(cfg.Webhook.Timeout),
		Policy:  webhookPolicy(cfg),
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return actions.Registry{
		"email":   mail,
		"emit":    &emit.Effector{Publisher: pub},
		"webhook": hook,
		"timer":   &timer.Effector{Scheduler: timers},
		"cancel":  &timer.Effector{Scheduler: timers},
	}, nil
}

// Sites returns the web sites cfg configures.
func Sites(cfg *config.Config) (*site.Set, error) {
	list := make([]site.Site, len(cfg.Sites))
	for i, s := range cfg.Sites {
		list[i] = site.Site{Name: s.Name, WriteKey: s.WriteKey, Origins: s.Origins, Allow: s.Allow, Deny: s.Deny}
	}
	return site.NewSet(list...)
}

// Mailer returns the email sender cfg names: SMTP when a URL is set, the
// .eml outbox folder otherwise.
func Mailer(cfg *config.Config) (email.Sender, error) {
	if cfg.Email.SMTP.URL != "" {
		return email.NewSMTP(email.SMTPConfig{URL: cfg.SMTPURL(), TLSPolicy: cfg.Email.SMTP.TLSPolicy, InsecureSkipVerify: cfg.Email.SMTP.InsecureSkipVerify})
	}
	return email.NewOutbox(cfg.Email.Outbox)
}

// ConnectOptions says how to reach NATS at url the way cfg does:
// credentials and TLS of cfg.NATS, and the secrets from the environment.
func ConnectOptions(cfg *config.Config, url, name string, logger *slog.Logger) natsbus.ConnectOptions {
	n := cfg.NATS
	return natsbus.ConnectOptions{
		URL: url, CredsFile: n.Creds, NKeyFile: n.NKey, User: n.User,
		Password: string(n.Password), Token: string(n.Token),
		CAFile: n.TLS.CA, CertFile: n.TLS.Cert, KeyFile: n.TLS.Key,
		Name: name, Logger: logger,
	}
}

// LinkSigner uses the keys in HERALD_LINK_KEYS, or else a key generated
// once and kept in the data directory, so links keep working across
// restarts.
func LinkSigner(dataDir string, logger *slog.Logger) (*links.Signer, error) {
	spec := string(config.LinkKeys())
	if spec == "" {
		path := filepath.Join(dataDir, "link-keys")
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			secret := make([]byte, 32)
			if _, err := rand.Read(secret); err != nil {
				return nil, err
			}
			data = []byte("k1:" + base64.RawURLEncoding.EncodeToString(secret) + "\n")
			if err := os.MkdirAll(dataDir, 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				return nil, fmt.Errorf("keep link key: %w", err)
			}
			logger.Info("generated a link signing key; set HERALD_LINK_KEYS to manage keys yourself", "file", path)
		} else if err != nil {
			return nil, fmt.Errorf("read link key: %w", err)
		}
		spec = string(data)
	}
	keys, err := links.ParseKeys(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvLinkKeys, err)
	}
	return links.NewSigner(keys...)
}

// EngineName returns the name this engine goes by among engines sharing a
// NATS server: engine_name from the configuration, or else a random name
// made on the first start and kept in the data directory's engine-name
// file, so that a restarted engine keeps it.
func EngineName(cfg *config.Config) (string, error) {
	if cfg.EngineName != "" {
		return cfg.EngineName, nil
	}
	path := filepath.Join(cfg.DataDir, "engine-name")
	data, err := os.ReadFile(path)
	if err == nil {
		if name := strings.TrimSpace(string(data)); name != "" {
			return name, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read engine name: %w", err)
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	name := "herald-" + hex.EncodeToString(b)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(name+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("keep engine name: %w", err)
	}
	return name, nil
}
