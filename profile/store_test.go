package profile_test

import (
	"testing"

	"github.com/herald-events/herald/profile"
	"github.com/herald-events/herald/profile/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) profile.Store { return profile.NewMemory() })
}
