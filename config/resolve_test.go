package config

import (
	"testing"
	"time"
)

func TestResolveInterval(t *testing.T) {
	m, err := Parse("test.toml", []byte(head+nodeA))
	if err != nil {
		t.Fatal(err)
	}
	if m.ResolveInterval != DefaultResolveInterval {
		t.Errorf("without the key: got %v, want the default %v", m.ResolveInterval, DefaultResolveInterval)
	}
	m, err = Parse("test.toml", []byte(head+"resolve_interval = \"2s\"\n"+nodeA))
	if err != nil {
		t.Fatal(err)
	}
	if m.ResolveInterval != 2*time.Second {
		t.Errorf("resolve_interval = \"2s\": got %v", m.ResolveInterval)
	}
}

func TestResolveIntervalErrors(t *testing.T) {
	tests := []struct {
		name, doc, key, msg, hint string
	}{
		{"not a duration", head + "resolve_interval = ‸\"often\"\n" + nodeA, "mesh.resolve_interval", `"often" is not a duration`, `"60s"`},
		{"too short", head + "resolve_interval = ‸\"100ms\"\n" + nodeA, "mesh.resolve_interval", `"100ms" is shorter than 1s`, `"60s"`},
		{"zero", head + "resolve_interval = ‸\"0s\"\n" + nodeA, "mesh.resolve_interval", "shorter than 1s", ""},
		{"type", head + "resolve_interval = ‸60\n" + nodeA, "mesh.resolve_interval", "must be a string, not an integer", `resolve_interval = "60s"`},
		{"misspelt", head + "‸resolve-interval = \"5s\"\n" + nodeA, "mesh.resolve-interval", "unknown key", `did you mean "resolve_interval"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantOneError(t, tt.doc, tt.key, tt.msg, tt.hint) })
	}
}
