package event

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"time"
)

// IDLen is the length of the ids that NewID and DeriveID make.
const IDLen = 26

// crockford is Crockford's base32 alphabet, in ascending byte order, so that
// ids compare as strings the way their numeric values compare.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// maxULIDTime is the largest millisecond timestamp a ULID can hold.
const maxULIDTime = 1<<48 - 1

// NewID returns a new ULID for an event at time t: 26 characters of
// Crockford base32 encoding a 48-bit Unix millisecond timestamp followed by
// 80 random bits from crypto/rand. Ids of different milliseconds sort as
// strings in time order; ids within one millisecond are in random order.
// Times before 1970 are taken as 1970.
func NewID(t time.Time) string {
	var r [10]byte
	rand.Read(r[:]) // never returns an error; it crashes the program instead
	return ulid(t, &r)
}

// DeriveID returns a deterministic ULID: its timestamp is taken from t as in
// NewID, its 80 other bits from the SHA-256 hash of parts. The same t and
// parts always give the same id; the parts are hashed with their lengths, so
// ("ab", "c") and ("a", "bc") give different ids. It names events emitted by
// rules (from the id of the causing event and the rule) so that a replay
// emits them under the same ids.
func DeriveID(t time.Time, parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		io.WriteString(h, p)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return ulid(t, (*[10]byte)(sum[:10]))
}

// ulid encodes the millisecond timestamp of t and 80 bits of entropy.
func ulid(t time.Time, entropy *[10]byte) string {
	ms := max(t.UnixMilli(), 0)
	ms = min(ms, maxULIDTime)
	hi := uint64(ms)<<16 | uint64(entropy[0])<<8 | uint64(entropy[1])
	lo := binary.BigEndian.Uint64(entropy[2:])
	// 26 characters of 5 bits hold 130 bits: the first character
	// carries the top 3 bits of the 128-bit value.
	var b [IDLen]byte
	for i := IDLen - 1; i >= 0; i-- {
		b[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(b[:])
}
