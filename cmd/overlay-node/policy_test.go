package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

const segmentationMesh = "../../examples/segmentation/mesh.toml"

func TestPolicyWhy(t *testing.T) {
	tests := []struct {
		from, to, port string
		want           string // the first word
		rule           string // `"name" (file:line)` of the deciding rule, or the reason
	}{
		{"web1", "db1", "5432/tcp", "allow", `rule "web-to-db" (` + segmentationMesh + `:40)`},
		{"web2", "node:db1", "5432/tcp", "allow", `rule "web-to-db" (` + segmentationMesh + `:40)`},
		{"web1", "172.20.21.9", "5432/tcp", "allow", `rule "web-to-db" (` + segmentationMesh + `:40)`},
		{"web1", "db1", "5433/tcp", "deny", "but not 5433/tcp"},
		{"web1", "db1", "5432/udp", "deny", "but not 5432/udp"},
		{"db1", "web1", "5432/tcp", "deny", "but not 5432/tcp"},
		{"10.100.0.50", "web2", "8080/tcp", "allow", `rule "web-http" (` + segmentationMesh + `:46)`},
		{"10.100.0.50", "web2", "8101/tcp", "deny", "but not 8101/tcp"},
		{"10.100.0.50", "web1", "icmp", "allow", `rule "web-http" (` + segmentationMesh + `:46)`},
		{"10.100.0.50", "db1", "22/tcp", "deny", "but none to node db1 (10.100.0.21)"},
		{"admin1", "db1", "22/tcp", "allow", `rule "admin-ssh" (` + segmentationMesh + `:52)`},
		{"admin1", "172.20.21.5", "icmp", "allow", `rule "admin-ssh" (` + segmentationMesh + `:52)`},
		{"web1", "admin1", "514/udp", "allow", `rule "allow-4" (` + segmentationMesh + `:58)`},
		{"admin1", "web1", "514/udp", "deny", "but not 514/udp"},
		{"192.0.2.7", "10.100.0.99", "22/tcp", "deny", "rules allow traffic from 192.0.2.7, but none to 10.100.0.99"},
	}
	for _, tt := range tests {
		code, out, stderr := runCLI(t, "", "policy", "why", "-c", segmentationMesh, tt.from, tt.to, tt.port)
		if code != exitOK {
			t.Errorf("%s %s %s: got exit %d (%s), want 0", tt.from, tt.to, tt.port, code, stderr)
			continue
		}
		if first, _, _ := strings.Cut(out, " "); first != tt.want {
			t.Errorf("%s %s %s: got %q, want first word %q", tt.from, tt.to, tt.port, out, tt.want)
		}
		if !strings.Contains(out, tt.rule) {
			t.Errorf("%s %s %s: got %q, want it to name %s", tt.from, tt.to, tt.port, out, tt.rule)
		}
	}
}

func TestPolicyWhyWithoutRules(t *testing.T) {
	code, out, _ := runCLI(t, "", "policy", "why", "-c", "../../examples/three-node/mesh.toml", "a", "b", "22/tcp")
	if code != exitOK || !strings.HasPrefix(out, "allow ") || !strings.Contains(out, "no [[allow]] rules") {
		t.Errorf("got exit %d, %q; want allow because there are no rules", code, out)
	}
}

func TestPolicyWhyUsage(t *testing.T) {
	for _, args := range [][]string{
		{"policy"},
		{"policy", "how"},
		{"policy", "why", "web1", "db1", "22/tcp"},
		{"policy", "why", "-c", segmentationMesh, "web1", "db1"},
		{"policy", "why", "-c", segmentationMesh, "web1", "db1", "22"},
		{"policy", "why", "-c", segmentationMesh, "web1", "db1", "1-2/tcp"},
		{"policy", "why", "-c", segmentationMesh, "web1", "nosuchnode", "22/tcp"},
		{"policy", "why", "--bogus", "-c", segmentationMesh, "web1", "db1", "22/tcp"},
	} {
		code, _, stderr := runCLI(t, "", args...)
		if code != exitUsage || !strings.Contains(stderr, "usage: overlay-node policy why") {
			t.Errorf("%q: got exit %d, stderr %q; want 2 with a usage line", args, code, stderr)
		}
	}
	if code, out, _ := runCLI(t, "", "policy", "why", "-h"); code != exitOK || !strings.Contains(out, "usage: overlay-node policy why") {
		t.Errorf("-h: got exit %d, %q", code, out)
	}
}

func TestCheckFailingExpect(t *testing.T) {
	data, err := os.ReadFile(segmentationMesh)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the rule web1 needs to reach db1; the first expectation now fails.
	doc := strings.Replace(string(data), `ports = ["5432/tcp"]`, `ports = ["5433/tcp"]`, 1)
	lines := strings.Split(doc, "\n")
	expectLine := 0
	for i, l := range lines {
		if l == "[[expect]]" {
			expectLine = i + 1
			break
		}
	}
	mesh := writeFile(t, t.TempDir(), "mesh.toml", doc, 0o644)
	code, _, stderr := runCLI(t, "", "check", "-c", mesh)
	if code != exitError {
		t.Fatalf("got exit %d, want 1:\n%s", code, stderr)
	}
	want := mesh + ":" + strconv.Itoa(expectLine) + ":1: expect: expected allow, got deny: no rule allows 5432/tcp from node web1"
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if !strings.Contains(stderr, "1 problem(s)") {
		t.Errorf("want exactly one problem:\n%s", stderr)
	}
}

func TestCheckPrintsWarnings(t *testing.T) {
	data, err := os.ReadFile(segmentationMesh)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(data), `from = ["group:admin"]`, `from = ["group:admin", "group:ops"]`, 1)
	mesh := writeFile(t, t.TempDir(), "mesh.toml", doc, 0o644)
	code, out, stderr := runCLI(t, "", "check", "-c", mesh)
	if code != exitOK || !strings.Contains(out, "ok") {
		t.Fatalf("an unknown group: got exit %d, %q, want 0 and ok:\n%s", code, out, stderr)
	}
	if want := mesh + ":54:24: warning: allow.from: no node is in group \"ops\""; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}
