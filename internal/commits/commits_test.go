package commits_test

import (
	"strings"
	"testing"

	"github.com/flux-commit-tracker/flux-commit-tracker/internal/commits"
)

func TestIsSHAPrefix(t *testing.T) {
	for s, want := range map[string]bool{
		"abc1234":               true,
		"ABCDEF0":               true,
		strings.Repeat("a", 40): true,
		strings.Repeat("a", 64): true,
		"abc123":                false, // under MinSHAPrefix
		strings.Repeat("a", 65): false,
		"abc123g":               false,
		"main":                  false,
		"deadbee\x10":           false,
		"":                      false,
		"ｆｆｆｆｆｆｆ":               false,
	} {
		if got := commits.IsSHAPrefix(s); got != want {
			t.Errorf("IsSHAPrefix(%q) = %t, want %t", s, got, want)
		}
	}
}
