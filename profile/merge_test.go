package profile_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/herald-events/herald/profile"
)

func TestMerge(t *testing.T) {
	var (
		day1    = "2026-11-01T09:00:00Z"
		day2    = "2026-11-02T09:00:00Z"
		day3    = "2026-11-03T09:00:00.5Z"
		now     = t0.Add(48 * time.Hour)
		earlier = t0.Add(-24 * time.Hour)
	)
	tests := []struct {
		name     string
		into     profile.Profile // the known customer's
		from     profile.Profile // the anonymous customer's
		want     profile.Profile // into after the merge, Updated aside
		unmerged map[string]any
		replaced map[string]any
	}{
		{
			name:     "standard fields: known values stay, anonymous ones fill the gaps",
			into:     profile.Profile{Email: "anna@example.com", Firstname: "Anna", Created: t0},
			from:     profile.Profile{Firstname: "Ann", Lastname: "Smith", City: "Kraków", Created: t0},
			want:     profile.Profile{Email: "anna@example.com", Firstname: "Anna", Lastname: "Smith", City: "Kraków", Created: t0},
			unmerged: map[string]any{"firstname": "Ann"},
		},
		{
			name:     "attributes: the known profile wins conflicts, equal values are not evidence",
			into:     profile.Profile{Attributes: map[string]any{"plan": "pro", "score": 2.0, "vip": true}},
			from:     profile.Profile{Attributes: map[string]any{"plan": "free", "score": 2.0, "visits": 3.0, "vip": false}},
			want:     profile.Profile{Attributes: map[string]any{"plan": "pro", "score": 2.0, "vip": true, "visits": 3.0}},
			unmerged: map[string]any{"plan": "free", "vip": false},
		},
		{
			name: "tags: the union; created: the earlier",
			into: profile.Profile{Tags: []string{"contact", "newsletter"}, Created: t0},
			from: profile.Profile{Tags: []string{"b2b", "newsletter"}, Created: earlier},
			want: profile.Profile{Tags: []string{"b2b", "contact", "newsletter"}, Created: earlier},
		},
		{
			name: "an empty anonymous profile changes nothing",
			into: profile.Profile{Email: "a@example.com", Attributes: map[string]any{"x": 1.0}, Tags: []string{"t"}, Created: t0},
			from: profile.Profile{},
			want: profile.Profile{Email: "a@example.com", Attributes: map[string]any{"x": 1.0}, Tags: []string{"t"}, Created: t0},
		},
		{
			name: "an empty known profile takes everything",
			into: profile.Profile{},
			from: profile.Profile{Firstname: "Ann", Attributes: map[string]any{"newsletterAgreement": "disabled", "x": 1.0}, Tags: []string{"t"}, Created: t0},
			want: profile.Profile{Firstname: "Ann", Attributes: map[string]any{"newsletterAgreement": "disabled", "x": 1.0}, Tags: []string{"t"}, Created: t0},
		},
		{
			name: "newsletter: the newer withdrawal of the anonymous customer wins, the known consent is kept as evidence",
			into: profile.Profile{Attributes: map[string]any{
				"newsletterAgreement": "enabled", "newsletterConfirmedAt": day1, "newsletterConfirmedIp": "203.0.113.7", "plan": "pro",
			}},
			from: profile.Profile{Attributes: map[string]any{
				"newsletterAgreement": "disabled", "newsletterDisabledAt": day2, "plan": "free",
			}},
			want: profile.Profile{Attributes: map[string]any{
				"newsletterAgreement": "disabled", "newsletterDisabledAt": day2, "plan": "pro",
			}},
			unmerged: map[string]any{"plan": "free"},
			replaced: map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": day1, "newsletterConfirmedIp": "203.0.113.7"},
		},
		{
			name: "newsletter: the known customer's newer agreement wins whole",
			into: profile.Profile{Attributes: map[string]any{
				"newsletterAgreement": "enabled", "newsletterRequestedAt": day1, "newsletterConfirmedAt": day3,
			}},
			from: profile.Profile{Attributes: map[string]any{
				"newsletterAgreement": "confirmation", "newsletterRequestedAt": day2, "newsletterConfirmedIp": "198.51.100.1",
			}},
			want: profile.Profile{Attributes: map[string]any{
				"newsletterAgreement": "enabled", "newsletterRequestedAt": day1, "newsletterConfirmedAt": day3,
			}},
			unmerged: map[string]any{"newsletterAgreement": "confirmation", "newsletterRequestedAt": day2, "newsletterConfirmedIp": "198.51.100.1"},
		},
		{
			name:     "newsletter: the anonymous customer's newer request wins over an older confirmation",
			into:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "enabled", "newsletterEnabledAt": day1, "newsletterEnabledSource": "shop"}},
			from:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "confirmation", "newsletterRequestedAt": day3}},
			want:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "confirmation", "newsletterRequestedAt": day3}},
			replaced: map[string]any{"newsletterAgreement": "enabled", "newsletterEnabledAt": day1, "newsletterEnabledSource": "shop"},
		},
		{
			name:     "newsletter: a side with a time is newer than one without (text that is no time does not count)",
			into:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": day1}},
			from:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "disabled", "newsletterDisabledAt": "not a time", "newsletterX": "x"}},
			want:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": day1}},
			unmerged: map[string]any{"newsletterAgreement": "disabled", "newsletterDisabledAt": "not a time", "newsletterX": "x"},
		},
		{
			name:     "newsletter: times as time.Time count too",
			into:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": day1}},
			from:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "disabled", "newsletterDisabledAt": t0}},
			want:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "disabled", "newsletterDisabledAt": t0}},
			replaced: map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": day1},
		},
		{
			name:     "newsletter: a tie goes to the withdrawal",
			into:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": day2}},
			from:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "disabled", "newsletterDisabledAt": day2}},
			want:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "disabled", "newsletterDisabledAt": day2}},
			replaced: map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": day2},
		},
		{
			name:     "newsletter: otherwise a tie goes to the known customer",
			into:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "confirmation"}},
			from:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "enabled"}},
			want:     profile.Profile{Attributes: map[string]any{"newsletterAgreement": "confirmation"}},
			unmerged: map[string]any{"newsletterAgreement": "enabled"},
		},
		{
			name: "newsletter: the only side with an agreement wins, without evidence to keep",
			into: profile.Profile{Attributes: map[string]any{"plan": "pro"}},
			from: profile.Profile{Attributes: map[string]any{"newsletterAgreement": "disabled", "newsletterDisabledAt": day1}},
			want: profile.Profile{Attributes: map[string]any{"plan": "pro", "newsletterAgreement": "disabled", "newsletterDisabledAt": day1}},
		},
		{
			name: "newsletter: an anonymous customer without an agreement does not touch the known one's",
			into: profile.Profile{Attributes: map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": day1}},
			from: profile.Profile{Attributes: map[string]any{"plan": "free"}},
			want: profile.Profile{Attributes: map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": day1, "plan": "free"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.into.UUID, tt.from.UUID, tt.want.UUID = "known", "anon", "known"
			from := tt.from.Clone()
			into := tt.into.Clone()
			m := into.Merge(from, now)
			tt.want.Updated = now
			if !reflect.DeepEqual(*into, tt.want) {
				g, _ := json.Marshal(into)
				w, _ := json.Marshal(tt.want)
				t.Errorf("merged profile\n got %s\nwant %s", g, w)
			}
			want := profile.Merge{From: "anon", At: now, Unmerged: tt.unmerged, Replaced: tt.replaced}
			if !reflect.DeepEqual(m, want) {
				t.Errorf("merge entry\n got %+v\nwant %+v", m, want)
			}
			if !reflect.DeepEqual(from, tt.from.Clone()) {
				t.Errorf("the anonymous profile changed: %+v", from)
			}
		})
	}
}

func TestAgreementChanged(t *testing.T) {
	got, ok := profile.AgreementChanged(map[string]any{
		"newsletterRequestedAt": "2026-11-01T09:00:00Z",
		"newsletterDisabledAt":  "2026-11-03T09:00:00+01:00",
		"newsletterConfirmedAt": "2026-11-02T09:00:00Z",
		"newsletterNote":        "2026-12-01T09:00:00Z", // not a time attribute: no At
		"lastOrderAt":           "2026-12-01T09:00:00Z", // not a newsletter attribute
	})
	if want := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC); !ok || !got.Equal(want) {
		t.Errorf("AgreementChanged = %v, %v; want %v", got, ok, want)
	}
	if _, ok := profile.AgreementChanged(map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": 12.0}); ok {
		t.Error("AgreementChanged found a time in a number")
	}
}

// Merging again what was merged changes nothing: a redelivered merge is
// harmless even if it is run twice.
func TestMergeTwiceIsMergeOnce(t *testing.T) {
	into := &profile.Profile{UUID: "known", Email: "a@example.com", Attributes: map[string]any{"newsletterAgreement": "enabled", "newsletterConfirmedAt": "2026-11-01T00:00:00Z", "plan": "pro"}, Tags: []string{"a"}, Created: t0}
	from := &profile.Profile{UUID: "anon", Firstname: "Ann", Attributes: map[string]any{"newsletterAgreement": "disabled", "newsletterDisabledAt": "2026-11-02T00:00:00Z", "plan": "free"}, Tags: []string{"b"}, Created: t1}
	once := into.Clone()
	once.Merge(from, t1)
	twice := once.Clone()
	twice.Merge(from, t1)
	if !reflect.DeepEqual(once, twice) {
		t.Errorf("merged once %+v\nmerged twice %+v", once, twice)
	}
}
