package main

import (
	"os"
	"strings"
	"testing"
)

// The example's wg-quick file is what export writes for its mesh file.
func TestExportMatchesExample(t *testing.T) {
	const dir = "../../examples/with-stock-wireguard/"
	code, out, errOut := runCLI(t, "", "export", "wg-quick", "-c", dir+"mesh.toml", "wg-vm")
	if code != exitOK {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	want, err := os.ReadFile(dir + "stock-peer.conf")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("stock-peer.conf is not what export writes (regenerate it):\ngot:\n%s\nwant:\n%s", out, want)
	}
	for _, w := range []string{"PrivateKey = " + privateKeyPlaceholder, "Address = 10.100.0.3/24", "ListenPort = 51820",
		"# node-2\nPublicKey = hx8ate0U8fOMdRpsWKurM48cCuPUzpWSM1Gh2lwFaxI=\nAllowedIPs = 10.100.0.2/32, 192.168.80.0/24\nEndpoint = 192.0.2.22:51820"} {
		if !strings.Contains(out, w) {
			t.Errorf("export: no %q in:\n%s", w, out)
		}
	}
}

func TestExportUsage(t *testing.T) {
	for _, args := range [][]string{
		{"export"}, {"export", "json"}, {"export", "wg-quick"}, {"export", "wg-quick", "-c", "x"},
		{"export", "-c", "x", "wg-quick", "a"},
	} {
		if code, _, errOut := runCLI(t, "", args...); code != exitUsage || !strings.Contains(errOut, "usage: overlay-node export") {
			t.Errorf("%q: got exit %d, %q; want 2 and the usage", args, code, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "", "export", "wg-quick", "-c", "../../examples/with-stock-wireguard/mesh.toml", "nope"); code != exitUsage || !strings.Contains(errOut, `no node "nope"`) {
		t.Errorf("unknown node: got exit %d, %q", code, errOut)
	}
}
