package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestParseErrors checks every kind of problem: each document has exactly
// one, marked with ‸, and the error must point there.
func TestParseErrors(t *testing.T) {
	const zeroKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	const lowOrderKey = "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" // the point 1, of order 1
	tests := []struct {
		name string
		doc  string
		key  string // want Error.Key
		msg  string // want a substring of Error.Msg
		hint string // want a substring of Error.Hint, if set
	}{
		// TOML itself.
		{"syntax", "[mesh]\nname = ‸\n", "", "invalid TOML", "TOML syntax"},
		{"unterminated string", "[mesh]\nname = \"t‸\n", "", "invalid TOML", ""},
		{"duplicate toml key", head + "‸name = \"u\"\n" + nodeA, "name", "already defined", ""},

		// Unknown keys.
		{"unknown mesh key", head + "‸prot = 1\n" + nodeA, "mesh.prot", "unknown key", `did you mean "port"`},
		{"unknown top key", "‸peer = 1\n" + head + nodeA, "peer", "unknown key", `did you mean "node"`},
		{"unknown table", head + nodeA + "[‸firewall]\nname = \"x\"\n", "firewall", "unknown key", "[mesh], [[node]], [[allow]], [[expect]] and [[service]]"},
		{"unknown node key", head + nodeA + nodeC("‸mtu = 1400\n"), "node.mtu", "unknown key", "[[node]] keys are name, public_key"},
		{"misspelt node key", head + nodeA + "[[node]]\nname = \"c\"\npublic_key = \"" + keyC + "\"\n‸adress = \"10.100.0.3/24\"\n",
			"node.adress", "unknown key", `did you mean "address"`},
		{"wg-quick key", head + nodeA + nodeC("‸AllowedIPs = [\"192.168.1.0/24\"]\n"), "node.AllowedIPs", "unknown key", `did you mean "subnets"`},
		{"wg-quick keepalive", head + nodeA + nodeC("‸PersistentKeepalive = 25\n"), "node.PersistentKeepalive", "unknown key", `did you mean "keepalive"`},

		// [mesh].
		{"no mesh", "‸" + nodeA, "mesh.name", "missing", `name = "prod"`},
		{"mesh name missing", "‸[mesh]\nport = 51820\n" + nodeA, "mesh.name", "missing", ""},
		{"mesh name label", "[mesh]\nname = ‸\"Prod Net\"\n" + nodeA, "mesh.name", `"Prod Net" is not a DNS label`, `"prod-net"`},
		{"mesh name too long", "[mesh]\nname = ‸\"" + strings.Repeat("x", 64) + "\"\n" + nodeA, "mesh.name", "is not a DNS label", "up to 63"},
		{"mesh name leading dash", "[mesh]\nname = ‸\"-x\"\n" + nodeA, "mesh.name", "is not a DNS label", `"x"`},
		{"mesh name type", "[mesh]\nname = ‸7\n" + nodeA, "mesh.name", "must be a string, not an integer", `name = "prod"`},
		{"mesh name date", "[mesh]\nname = ‸1979-05-27\n" + nodeA, "mesh.name", "must be a string, not a date or time", ""},
		{"dotted mesh name", "mesh.name = ‸\"A\"\n" + nodeA, "mesh.name", "is not a DNS label", ""},
		{"mesh port range", head + "port = ‸70000\n" + nodeA, "mesh.port", "70000 is out of range 1..65535", "51820"},
		{"mesh port zero", head + "port = ‸0\n" + nodeA, "mesh.port", "0 is out of range 1..65535", ""},
		{"mesh port negative", head + "port = ‸-1\n" + nodeA, "mesh.port", "-1 is out of range", ""},
		{"mesh port type", head + "port = ‸\"51820\"\n" + nodeA, "mesh.port", "must be an integer, not a string", "port = 51820"},
		{"mtu low", head + "mtu = ‸1000\n" + nodeA, "mesh.mtu", "1000 is out of range 1280..65535", "1280"},
		{"mtu high", head + "mtu = ‸0x10000\n" + nodeA, "mesh.mtu", "65536 is out of range", ""},
		{"mtu float", head + "mtu = ‸1420.0\n" + nodeA, "mesh.mtu", "must be an integer, not a float", ""},
		{"node under mesh", head + "‸node = []\n", "mesh.node", "unknown key", "top level"},
		{"mesh not a table", "‸mesh = \"t\"\n" + nodeA, "mesh", "must be a table, not a string", "[mesh]"},

		// The list of nodes.
		{"no nodes", "‸" + head, "node", "the mesh has no nodes", "[[node]]"},
		{"empty node list", "node = ‸[]\n" + head, "node", "the mesh has no nodes", ""},
		{"node as table", head + "[‸node]\nname = \"a\"\n", "node", "must be an array of tables, not a table", "[[node]]"},
		{"node element type", "node = [‸1]\n" + head, "node", "must be a table, not an integer", ""},

		// name.
		{"node name missing", head + nodeA + "‸[[node]]\npublic_key = \"" + keyB + "\"\naddress = \"10.100.0.2/24\"\n", "node.name", "missing", "DNS label"},
		{"node name label", head + nodeA + "[[node]]\nname = ‸\"Web_1\"\npublic_key = \"" + keyB + "\"\naddress = \"10.100.0.2/24\"\n",
			"node.name", `"Web_1" is not a DNS label`, `"web-1"`},
		{"node name duplicate", head + nodeA + "[[node]]\nname = ‸\"a\"\npublic_key = \"" + keyB + "\"\naddress = \"10.100.0.2/24\"\n",
			"node.name", `"a" is already the name of the node at line 3`, "unique"},
		{"node name type", head + nodeA + "[[node]]\nname = ‸true\npublic_key = \"" + keyB + "\"\naddress = \"10.100.0.2/24\"\n",
			"node.name", "must be a string, not a boolean", ""},

		// public_key.
		{"key missing", head + nodeA + "‸[[node]]\nname = \"b\"\naddress = \"10.100.0.2/24\"\n", "node.public_key", `missing in node "b"`, "overlay-node pubkey"},
		{"key short", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = ‸\"abc\"\naddress = \"10.100.0.2/24\"\n",
			"node.public_key", `"abc" is not a public key: want 44 base64 characters, got 3`, "overlay-node pubkey"},
		{"key not base64", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = ‸\"" + strings.Repeat("!", 43) + "=\"\naddress = \"10.100.0.2/24\"\n",
			"node.public_key", "not valid base64", ""},
		{"key zero", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = ‸\"" + zeroKey + "\"\naddress = \"10.100.0.2/24\"\n",
			"node.public_key", "all zeros", ""},
		{"key low order", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = ‸\"" + lowOrderKey + "\"\naddress = \"10.100.0.2/24\"\n",
			"node.public_key", "low-order", ""},
		{"key duplicate", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = ‸\"" + keyA + "\"\naddress = \"10.100.0.2/24\"\n",
			"node.public_key", `is already the key of node "a" (line 5)`, "genkey"},
		{"key type", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = ‸[\"" + keyB + "\"]\naddress = \"10.100.0.2/24\"\n",
			"node.public_key", "must be a string, not an array", ""},

		// address.
		{"address missing", head + nodeA + "‸[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\n", "node.address", `missing in node "b"`, "10.100.0.1/24"},
		{"address empty", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = ‸[]\n", "node.address", "is empty", ""},
		{"address no prefix", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = ‸\"10.100.0.2\"\n",
			"node.address", `"10.100.0.2" has no prefix length`, `"10.100.0.2/24"`},
		{"address v6 no prefix", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = ‸\"fd00::2\"\n",
			"node.address", "has no prefix length", `"fd00::2/64"`},
		{"address garbage", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = ‸\"10.100.0.300/24\"\n",
			"node.address", `"10.100.0.300/24" is not an IP address with a prefix length`, "prefix length"},
		{"address network", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = ‸\"10.100.1.0/24\"\n",
			"node.address", "10.100.1.0 is the network address of 10.100.1.0/24", `"10.100.1.1/24"`},
		{"address broadcast", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = ‸\"10.100.1.255/24\"\n",
			"node.address", "broadcast address", `"10.100.1.254/24"`},
		{"address loopback", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = ‸\"127.0.0.2/8\"\n",
			"node.address", "not a unicast host address", ""},
		{"address mapped", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = ‸\"::ffff:10.100.0.2/120\"\n",
			"node.address", "IPv4-mapped", `"10.100.0.2/24"`},
		{"address duplicate", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = ‸\"10.100.0.1/16\"\n",
			"node.address", `10.100.0.1 is already the address of node "a" (line 6)`, "its own"},
		{"address duplicate in list", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = [\"10.100.0.2/24\", ‸\"10.100.0.2/24\"]\n",
			"node.address", "10.100.0.2 is listed twice", ""},
		{"address type", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = ‸10\n",
			"node.address", "must be a string or an array of strings, not an integer", "dual stack"},
		{"address element type", head + nodeA + "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = [\"10.100.0.2/24\", ‸5]\n",
			"node.address", "must hold strings, not an integer", ""},

		// endpoint.
		{"endpoint no port", head + nodeA + nodeC("endpoint = ‸\"192.0.2.3\"\n"), "node.endpoint", `"192.0.2.3" has no port`, `"192.0.2.3:51820"`},
		{"endpoint host no port", head + nodeA + nodeC("endpoint = ‸\"gw.example.net\"\n"), "node.endpoint", "has no port", `"gw.example.net:51820"`},
		{"endpoint v6 no brackets", head + nodeA + nodeC("endpoint = ‸\"2001:db8::3:51820\"\n"), "node.endpoint", "without brackets", `"[2001:db8::3]:51820"`},
		{"endpoint v6 no port", head + nodeA + nodeC("endpoint = ‸\"2001:db8::3\"\n"), "node.endpoint", "has no port", `"[2001:db8::3]:51820"`},
		{"endpoint port range", head + nodeA + nodeC("endpoint = ‸\"192.0.2.3:70000\"\n"), "node.endpoint", `port "70000", not a number from 1 to 65535`, ""},
		{"endpoint port name", head + nodeA + nodeC("endpoint = ‸\"gw.example.net:wireguard\"\n"), "node.endpoint", `port "wireguard"`, ""},
		{"endpoint port zero", head + nodeA + nodeC("endpoint = ‸\"192.0.2.3:0\"\n"), "node.endpoint", "has port 0", ""},
		{"endpoint bad host", head + nodeA + nodeC("endpoint = ‸\"bad_host:51820\"\n"), "node.endpoint", `"bad_host" is not a valid IP address or host name`, ""},
		{"endpoint bad ipv4", head + nodeA + nodeC("endpoint = ‸\"192.0.2.300:51820\"\n"), "node.endpoint", "not a valid IP address or host name", ""},
		{"endpoint no host", head + nodeA + nodeC("endpoint = ‸\":51820\"\n"), "node.endpoint", "has no host", ""},
		{"endpoint empty", head + nodeA + nodeC("endpoint = ‸\"\"\n"), "node.endpoint", "is empty", "behind NAT"},
		{"endpoint multicast", head + nodeA + nodeC("endpoint = ‸\"224.0.0.1:51820\"\n"), "node.endpoint", "not a unicast address", ""},
		{"endpoint type", head + nodeA + nodeC("endpoint = ‸51820\n"), "node.endpoint", "must be a string, not an integer", ""},
		{"endpoint duplicate", head + "[[node]]\nname = \"a\"\npublic_key = \"" + keyA + "\"\naddress = \"10.100.0.1/24\"\nendpoint = \"192.0.2.1:51820\"\n" +
			nodeC("endpoint = ‸\"192.0.2.1:51820\"\n"), "node.endpoint", `192.0.2.1:51820 is already the endpoint of node "a" (line 7)`, "different port"},
		{"endpoint duplicate host name", head + "[[node]]\nname = \"a\"\npublic_key = \"" + keyA + "\"\naddress = \"10.100.0.1/24\"\nendpoint = \"GW.example.net:51820\"\n" +
			nodeC("endpoint = ‸\"gw.example.net.:51820\"\n"), "node.endpoint", "is already the endpoint", ""},
		{"endpoint is overlay address", head + nodeA + nodeC("endpoint = ‸\"10.100.0.1:51820\"\n"), "node.endpoint", `10.100.0.1 is the overlay address of node "a" (line 6)`, "outside the mesh"},

		// subnets.
		{"subnet host bits", head + nodeA + nodeC("subnets = [‸\"192.168.60.1/24\"]\n"), "node.subnets", "192.168.60.1/24 has host bits set", `"192.168.60.0/24"`},
		{"subnet v6 host bits", head + nodeA + nodeC("subnets = [‸\"fd00:60::1/64\"]\n"), "node.subnets", "has host bits set", `"fd00:60::/64"`},
		{"subnet bad", head + nodeA + nodeC("subnets = [‸\"192.168.60.0/33\"]\n"), "node.subnets", `"192.168.60.0/33" is not a network in CIDR form`, "192.168.60.0/24"},
		{"subnet bare address", head + nodeA + nodeC("subnets = [\"192.168.60.0/24\", ‸\"192.168.61.5\"]\n"), "node.subnets", "has no prefix length", `"192.168.61.5/32"`},
		{"subnet mapped", head + nodeA + nodeC("subnets = [‸\"::ffff:192.168.60.0/120\"]\n"), "node.subnets", "IPv4-mapped", `"192.168.60.0/24"`},
		{"subnets string", head + nodeA + nodeC("subnets = ‸\"192.168.60.0/24\"\n"), "node.subnets", "must be an array of strings, not a string", `subnets = ["192.168.60.0/24"]`},
		{"subnet overlap", head + "[[node]]\nname = \"a\"\npublic_key = \"" + keyA + "\"\naddress = \"10.100.0.1/24\"\nsubnets = [\"172.20.0.0/16\"]\n" +
			nodeC("subnets = [‸\"172.20.1.0/24\"]\n"), "node.subnets", `172.20.1.0/24 overlaps 172.20.0.0/16 of node "a" (line 7)`, "exactly one node"},
		{"subnet overlap v6", head + "[[node]]\nname = \"a\"\npublic_key = \"" + keyA + "\"\naddress = \"10.100.0.1/24\"\nsubnets = [\"fd00:20:1::/64\"]\n" +
			nodeC("subnets = [‸\"fd00:20::/32\"]\n"), "node.subnets", "overlaps fd00:20:1::/64", ""},
		{"subnet contains address", head + nodeA + nodeC("subnets = [‸\"10.100.0.0/31\"]\n"), "node.subnets", `10.100.0.0/31 contains 10.100.0.1, the address of node "a" (line 6)`, "leaves out"},
		{"subnet contains addresses", head + nodeA + nodeB + nodeC("subnets = [‸\"10.0.0.0/8\"]\n"), "node.subnets", ", and 1 more overlay address", ""},
		{"subnet default route", head + nodeA + nodeC("subnets = [‸\"0.0.0.0/0\"]\n"), "node.subnets", "0.0.0.0/0 contains 10.100.0.1", ""},
		{"subnet duplicate", head + nodeA + nodeC("subnets = [\"192.168.60.0/24\", ‸\"192.168.60.0/24\"]\n"), "node.subnets", "192.168.60.0/24 is listed twice", ""},

		// keepalive.
		{"keepalive no unit", head + nodeA + nodeC("keepalive = ‸\"25\"\n"), "node.keepalive", `"25" is not a duration`, `"25s"`},
		{"keepalive zero", head + nodeA + nodeC("keepalive = ‸\"0s\"\n"), "node.keepalive", "turns keepalive off", "remove the key"},
		{"keepalive high", head + nodeA + nodeC("keepalive = ‸\"70000s\"\n"), "node.keepalive", "19h26m40s is out of range 1s..65535s", ""},
		{"keepalive negative", head + nodeA + nodeC("keepalive = ‸\"-5s\"\n"), "node.keepalive", "-5s is out of range", ""},
		{"keepalive fraction", head + nodeA + nodeC("keepalive = ‸\"1500ms\"\n"), "node.keepalive", "1.5s is not a whole number of seconds", `"2s"`},
		{"keepalive integer", head + nodeA + nodeC("keepalive = ‸25\n"), "node.keepalive", "must be a string, not an integer", `keepalive = "25s"`},

		// port.
		{"node port zero", head + nodeA + nodeC("port = ‸0\n"), "node.port", "0 is out of range 1..65535", ""},
		{"node port high", head + nodeA + nodeC("port = ‸65536\n"), "node.port", "65536 is out of range 1..65535", ""},
		{"node port type", head + nodeA + nodeC("port = ‸\"51820\"\n"), "node.port", "must be an integer, not a string", ""},

		// Other ways to write the same TOML.
		{"inline node", "node = [\n  {name = \"a\", public_key = \"" + keyA + "\", address = \"10.100.0.1/24\"},\n  {name = \"c\", public_key = \"" + keyC + "\", address = ‸\"10.100.0.3\"},\n]\n" + head,
			"node.address", "has no prefix length", ""},
		{"dotted node key", head + nodeA + nodeC("‸keepalive.x = 1\n"), "node.keepalive", "must be a string, not a table", ""},
		{"quoted key", head + nodeA + nodeC("‸\"end point\" = \"x\"\n"), "node.end point", "unknown key", `did you mean "endpoint"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantOneError(t, tt.doc, tt.key, tt.msg, tt.hint) })
	}
}

// TestParseAllErrors checks that a file with many problems reports each of
// them, once, in file order.
func TestParseAllErrors(t *testing.T) {
	doc, at := unmark(`[mesh]
name = ‸"Overlay"
‸prot = 51820
mtu = ‸9

[[node]]
name = "a"
public_key = "` + keyA + `"
address = "10.100.0.1/24"
endpoint = ‸"192.0.2.1"
subnets = ["172.20.0.0/16"]

[[node]]
name = ‸"a"
public_key = ‸"` + keyA + `"
‸adress = "10.100.0.2/24"
subnets = [‸"172.20.1.1/24", ‸"172.20.2.0/24"]
keepalive = ‸"25"

‸[[node]]
public_key = ‸"not a key"
address = ["10.100.0.4/24", ‸"10.100.0.1/24", ‸"10.100.1.0/24"]
endpoint = ‸"2001:db8::1:51820"
port = ‸0
`)
	_, err := Parse("many.toml", []byte(doc))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	list := errorList(t, err)
	for i, e := range list {
		t.Logf("%d: %v", i, e)
	}
	if len(list) != len(at) {
		t.Fatalf("got %d errors, want %d", len(list), len(at))
	}
	for i, e := range list {
		if e.Line != at[i].Line || e.Col != at[i].Col {
			t.Errorf("error %d: got position %d:%d, want %d:%d: %v", i, e.Line, e.Col, at[i].Line, at[i].Col, e)
		}
		if want := fmt.Sprintf("many.toml:%d:%d: ", e.Line, e.Col); !strings.HasPrefix(e.Error(), want) {
			t.Errorf("error %d: got %q, want prefix %q", i, e.Error(), want)
		}
	}
	if got, want := strings.Count(err.Error(), "\n"), len(at)-1; got != want {
		t.Errorf("ErrorList.Error has %d newlines, want %d", got, want)
	}
}
