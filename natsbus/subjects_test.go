package natsbus_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/herald-events/herald/natsbus"
)

func TestCustomerToken(t *testing.T) {
	tests := []struct{ uuid, want string }{
		{"anna-7f3c", "anna-7f3c"},
		{"6f1c2d1e-0b6a-4c1e-9c53-1d2b3c4d5e6f", "6f1c2d1e-0b6a-4c1e-9c53-1d2b3c4d5e6f"},
		{"a_B-9", "a_B-9"},
		{"a b/c", "~YSBiL2M"},
		{"anna.doe", "~YW5uYS5kb2U"},
		{"*", "~Kg"},
		{">", "~Pg"},
		{"~x", "~fng"},
		{"é", "~w6k"},
		{"", "~"},
	}
	for _, tt := range tests {
		if got := natsbus.CustomerToken(tt.uuid); got != tt.want {
			t.Errorf("CustomerToken(%q) = %q, want %q", tt.uuid, got, tt.want)
		}
	}
}

// Every uuid gets one token that is a valid subject token, and two uuids
// never share one.
func FuzzCustomerToken(f *testing.F) {
	for _, s := range []string{"anna-7f3c", "a b", "a.b", "~YQ", "", "\x00", "日本"} {
		f.Add(s, s+"x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, tb := natsbus.CustomerToken(a), natsbus.CustomerToken(b)
		if ta == "" || strings.ContainsAny(ta, ".*> \t\r\n") {
			t.Fatalf("CustomerToken(%q) = %q, not a subject token", a, ta)
		}
		if (a == b) != (ta == tb) {
			t.Fatalf("CustomerToken(%q) = %q, CustomerToken(%q) = %q", a, ta, b, tb)
		}
	})
}

func TestCustomerSubject(t *testing.T) {
	tests := []struct{ subject, uuid, want string }{
		{"herald.events.http", "anna-7f3c", "herald.events.http.anna-7f3c"},
		{"herald.events.web", "a b", "herald.events.web.~YSBi"},
		{"herald.events.http.anna-7f3c", "bob", "herald.events.http.anna-7f3c"},
		{"herald.events.app.orders.eu", "bob", "herald.events.app.orders.eu"},
		{"herald.events.", "bob", "herald.events."},
		{"other.web", "bob", "other.web"},
	}
	for _, tt := range tests {
		if got := natsbus.CustomerSubject(tt.subject, tt.uuid); got != tt.want {
			t.Errorf("CustomerSubject(%q, %q) = %q, want %q", tt.subject, tt.uuid, got, tt.want)
		}
	}
}

func TestSplitStored(t *testing.T) {
	tests := []struct {
		subject string
		want    natsbus.Stored
	}{
		{"herald.part.3.http.anna-7f3c", natsbus.Stored{Partition: 3, Source: "http", Customer: "anna-7f3c", Published: "herald.events.http.anna-7f3c"}},
		{"herald.part.11.web.~YSBi", natsbus.Stored{Partition: 11, Source: "web", Customer: "~YSBi", Published: "herald.events.web.~YSBi"}},
		{"herald.events.http.anna-7f3c", natsbus.Stored{Partition: -1, Source: "http", Customer: "anna-7f3c", Published: "herald.events.http.anna-7f3c"}},
		{"herald.events.web", natsbus.Stored{Partition: -1, Source: "web", Published: "herald.events.web"}},
		{"herald.events.app.orders.eu", natsbus.Stored{Partition: -1, Source: "app", Published: "herald.events.app.orders.eu"}},
		{"herald.part.03.http.anna", natsbus.Stored{Partition: -1, Published: "herald.part.03.http.anna"}},
		{"herald.part.x.http.anna", natsbus.Stored{Partition: -1, Published: "herald.part.x.http.anna"}},
		{"herald.part.3.http", natsbus.Stored{Partition: -1, Published: "herald.part.3.http"}},
		{"other", natsbus.Stored{Partition: -1, Published: "other"}},
	}
	for _, tt := range tests {
		if got := natsbus.SplitStored(tt.subject); got != tt.want {
			t.Errorf("SplitStored(%q) = %+v, want %+v", tt.subject, got, tt.want)
		}
	}
}

// The partition PartitionOf computes is in [0, n) and spreads tokens over
// every partition.
func TestPartitionOf(t *testing.T) {
	const n = 12
	seen := make(map[int]int)
	for i := range 1200 {
		p := natsbus.PartitionOf(natsbus.CustomerToken(strings.Repeat("c", i%7)+string(rune('a'+i%26))+string(rune('0'+i%10))+"-"+string(rune('A'+i/26%26))), n)
		if p < 0 || p >= n {
			t.Fatalf("partition %d out of [0, %d)", p, n)
		}
		seen[p]++
	}
	if len(seen) != n {
		t.Errorf("%d of %d partitions used: %v", len(seen), n, seen)
	}
	if natsbus.PartitionOf("anna", 0) != 0 {
		t.Error("PartitionOf(_, 0) is not 0")
	}
}

// SplitStored takes any subject: what it reports of a partitioned one
// leads back to the subject it was published on.
func FuzzSplitStored(f *testing.F) {
	for _, s := range []string{"herald.part.3.http.anna", "herald.events.web", "herald.part.x.y", "herald.part.", "a.b.c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		st := natsbus.SplitStored(subject)
		if st.Partition < 0 {
			if st.Published != subject {
				t.Fatalf("SplitStored(%q).Published = %q for a subject not partitioned", subject, st.Published)
			}
			return
		}
		want := "herald.part." + strconv.Itoa(st.Partition) + "." + st.Source + "." + st.Customer
		if want != subject || st.Published != "herald.events."+st.Source+"."+st.Customer {
			t.Fatalf("SplitStored(%q) = %+v", subject, st)
		}
	})
}
