package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in   string
		want Ports
		err  string // substring of the error, when it fails
	}{
		{"any", AnyPorts, ""},
		{"icmp", Ports{Proto: ProtoICMP}, ""},
		{"5432/tcp", Ports{Proto: ProtoTCP, Lo: 5432, Hi: 5432}, ""},
		{"53/udp", Ports{Proto: ProtoUDP, Lo: 53, Hi: 53}, ""},
		{"8000-8100/tcp", Ports{Proto: ProtoTCP, Lo: 8000, Hi: 8100}, ""},
		{"1-65535/udp", Ports{Proto: ProtoUDP, Lo: 1, Hi: 65535}, ""},
		{"0/tcp", Ports{}, "out of range"},
		{"65536/tcp", Ports{}, "out of range"},
		{"99999999999999999999/tcp", Ports{}, "out of range"},
		{"100-90/tcp", Ports{}, "runs backwards"},
		{"80/sctp", Ports{}, `unknown protocol "sctp"`},
		{"80", Ports{}, `want "N/tcp"`},
		{"+80/tcp", Ports{}, "not a port number"},
		{"80-/tcp", Ports{}, "not a port number"},
		{"ICMP", Ports{}, `want "N/tcp"`},
		{"", Ports{}, `want "N/tcp"`},
	}
	for _, tt := range tests {
		got, err := ParsePorts(tt.in)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("ParsePorts(%q): %v", tt.in, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrPorts)):
			t.Errorf("ParsePorts(%q): got error %v, want one containing %q", tt.in, err, tt.err)
		case got != tt.want:
			t.Errorf("ParsePorts(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), `"`+tt.in+`"`) {
			t.Errorf("ParsePorts(%q): error %q does not quote the input", tt.in, err)
		}
	}
}

// FuzzParsePorts checks that ParsePorts never panics, that what it accepts
// is well formed, and that String gives back what it parses.
func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"any", "icmp", "80/tcp", "8000-8100/udp", "0/tcp", "65536/udp", "5-1/tcp", "-/tcp", "1-2-3/tcp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePorts(s)
		if err != nil {
			if !errors.Is(err, ErrPorts) {
				t.Fatalf("error %v does not match ErrPorts", err)
			}
			return
		}
		if !p.Any && p.Proto != ProtoICMP && (p.Lo < 1 || p.Lo > p.Hi) {
			t.Fatalf("ParsePorts(%q) accepted %+v", s, p)
		}
		back, err := ParsePorts(p.String())
		if err != nil || back != p {
			t.Fatalf("ParsePorts(%q) = %+v; its String %q parses as %+v, %v", s, p, p.String(), back, err)
		}
	})
}
