package links

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/herald-events/herald/event"
)

// ProofParam is the event parameter that carries a link proof: the
// Handler adds it to every event it publishes, and the consumer accepts a
// link-only action (such as newsletter.confirm) only with a proof that
// VerifyProof accepts. Being a parameter, the proof travels with the event
// wherever the event goes: over NATS, in the stream, in recordings.
const ProofParam = "link_proof"

// proofDomain starts the signed text of every proof, so that a proof's MAC
// can never be taken for a token's, or the other way round.
const proofDomain = "herald-link-proof"

// ErrNoProof is what VerifyProof wraps when the proof is missing or does
// not prove the event; match it with errors.Is.
var ErrNoProof = errors.New("invalid link proof")

// Proof returns the proof that the event ev was published by a link page
// of this signer, signed with the signer's first key:
//
//	v1.<key id>.<base64url(HMAC-SHA256(secret, "herald-link-proof.v1.<key id>." + canonical event))>
//
// The canonical event is ev's canonical JSON (see event.Event.MarshalJSON:
// id, action, label, time, uuid, site and every parameter, sorted by name,
// each value JSON-encoded) without the ProofParam parameter. Any change to
// any of them, the key id included, makes the proof fail. Depth, which
// travels outside the JSON, is not covered.
//
// Proof does not change ev; the Handler sets ev.Params[ProofParam] to the
// result.
func (s *Signer) Proof(ev *event.Event) (string, error) {
	if ev == nil {
		return "", errors.New("link proof: no event")
	}
	sum, err := proofMAC(s.secrets[s.signing], s.signing, ev)
	if err != nil {
		return "", err
	}
	return version + "." + s.signing + "." + b64.EncodeToString(sum), nil
}

// VerifyProof checks that proof (as Proof makes it) proves ev, with any
// key of the signer, so proofs made before a key rotation verify while
// their key is kept. The error wraps ErrNoProof when proof is empty,
// malformed, names a key the signer does not have or does not match ev.
// The MAC is compared in constant time; error messages never contain the
// MAC or secrets.
func (s *Signer) VerifyProof(ev *event.Event, proof string) error {
	if ev == nil {
		return fmt.Errorf("%w: no event", ErrNoProof)
	}
	if proof == "" {
		return fmt.Errorf("%w: none", ErrNoProof)
	}
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%w: malformed", ErrNoProof)
	}
	ver, kid, sig := parts[0], parts[1], parts[2]
	if ver != version {
		return fmt.Errorf("%w: unknown format version", ErrNoProof)
	}
	if !validKeyID(kid) {
		return fmt.Errorf("%w: malformed key id", ErrNoProof)
	}
	secret, ok := s.secrets[kid]
	if !ok {
		return fmt.Errorf("%w: unknown key id %q", ErrNoProof, kid)
	}
	got, err := b64.DecodeString(sig)
	if err != nil || len(got) != macLen {
		return fmt.Errorf("%w: malformed signature", ErrNoProof)
	}
	want, err := proofMAC(secret, kid, ev)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoProof, err)
	}
	if !hmac.Equal(got, want) {
		return fmt.Errorf("%w: bad signature (the event was changed, or the proof is not of this event)", ErrNoProof)
	}
	return nil
}

// proofMAC returns the MAC of ev's proof with the key kid.
func proofMAC(secret []byte, kid string, ev *event.Event) ([]byte, error) {
	canonical := *ev
	if _, ok := ev.Params[ProofParam]; ok {
		canonical.Params = maps.Clone(ev.Params)
		delete(canonical.Params, ProofParam)
	}
	data, err := canonical.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("link proof: %w", err)
	}
	return mac(secret, proofDomain+"."+version+"."+kid+"."+string(data)), nil
}
