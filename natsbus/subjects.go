package natsbus

import (
	"encoding/base64"
	"hash/fnv"
	"strconv"
	"strings"
)

// Subjects of events.
//
// An event is published on herald.events.<source>.<customer>: the source
// says where it came from (http, link, emitted, cli, or an app's own name)
// and the customer token (CustomerToken) who it is about. Every customer
// thus has subjects of their own, which is what lets the events stream
// keep one customer's events together: partitioned by customer
// (SetupConfig.Partitions), found and purged by subject.
//
// Apps may still publish on a plain source subject such as
// herald.events.web; Publisher adds the customer token itself. On a
// partitioned stream the events stream's subject transform stores
// herald.events.<source>.<customer> as
// herald.part.<partition>.<source>.<customer>, and events on any other
// subject under herald.events. are routed there by the engines.

// partitionPrefix starts the subjects of partitioned events as the events
// stream stores them. Nothing is published on it: the stream's subject
// transform writes it.
const partitionPrefix = "herald.part."

// CustomerToken returns the subject token standing for the customer uuid.
// Tokens allow neither dots, wildcards nor blanks, while a uuid may hold
// any character, so, as with profile keys, a uuid made only of
// [A-Za-z0-9_-] (every usual id, and the uuids herald.js makes) is its own
// token, and any other is "~" followed by the unpadded base64url encoding
// of its bytes: "a b/c" is "~YSBiL2M". Plain tokens never hold "~", so the
// two forms cannot collide, and each uuid has exactly one token.
func CustomerToken(uuid string) string {
	if isPlainToken(uuid) {
		return uuid
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(uuid))
}

// isPlainToken reports whether s is non-empty and made only of
// [A-Za-z0-9_-].
func isPlainToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CustomerSubject returns the subject an event of customer uuid is
// published on for subject: a source subject, herald.events.<source>, gets
// the customer's token added (herald.events.<source>.<token>); any other
// subject is returned as it is.
func CustomerSubject(subject, uuid string) string {
	rest, ok := strings.CutPrefix(subject, eventsPrefix)
	if !ok || rest == "" || strings.Contains(rest, ".") {
		return subject
	}
	return subject + "." + CustomerToken(uuid)
}

// SourceSubject returns the source subject herald.events.<source>.
func SourceSubject(source string) string { return eventsPrefix + source }

// PartitionOf returns the partition, from 0 to n-1, of the customer whose
// token is token, computed as the events stream's subject transform
// computes it (partition(n,2): FNV-1a of the token, modulo n).
func PartitionOf(token string, n int) int {
	if n <= 0 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(token))
	return int(h.Sum32() % uint32(n))
}

// PartitionFilter returns the subject filter of partition p's events as
// the stream stores them.
func PartitionFilter(p int) string { return partitionPrefix + strconv.Itoa(p) + ".>" }

// Stored is an event subject as the events stream stores it, split.
type Stored struct {
	// Partition is the event's partition, or -1 for a subject the
	// stream's transform left as it was published.
	Partition int
	// Source is the subject's source token (web, http, link, ...); ""
	// when the subject has none.
	Source string
	// Customer is the customer token of a subject of the form
	// herald.events.<source>.<customer> (partitioned or not); "" for any
	// other subject.
	Customer string
	// Published is the subject the event was published on.
	Published string
}

// SplitStored splits a subject as the events stream stores it.
func SplitStored(subject string) Stored {
	if rest, ok := strings.CutPrefix(subject, partitionPrefix); ok {
		if p, tail, ok := strings.Cut(rest, "."); ok {
			if n, err := strconv.Atoi(p); err == nil && n >= 0 && strconv.Itoa(n) == p {
				if source, customer, ok := strings.Cut(tail, "."); ok && source != "" && customer != "" && !strings.Contains(customer, ".") {
					return Stored{Partition: n, Source: source, Customer: customer, Published: eventsPrefix + tail}
				}
			}
		}
		return Stored{Partition: -1, Published: subject}
	}
	s := Stored{Partition: -1, Published: subject}
	rest, ok := strings.CutPrefix(subject, eventsPrefix)
	if !ok {
		return s
	}
	source, tail, _ := strings.Cut(rest, ".")
	s.Source = source
	if tail != "" && !strings.Contains(tail, ".") {
		s.Customer = tail
	}
	return s
}

// ExplainSubjects is the subject filter on which each engine answers
// requests for the explanations of its latest evaluations of a customer,
// one subject a customer: herald.explain.<customer token> (ExplainSubject).
// It is no stream's: requests and answers are plain NATS messages.
const ExplainSubjects = explainPrefix + "*"

const explainPrefix = "herald.explain."

// ExplainSubject returns the subject to ask the engines for their latest
// evaluations of customer uuid on.
func ExplainSubject(uuid string) string { return explainPrefix + CustomerToken(uuid) }
