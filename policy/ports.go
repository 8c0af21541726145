package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// IP protocol numbers the rules name.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// Ports is what one entry of a rule's ports list admits: every protocol
// (Any), ICMP and ICMPv6 (Proto ProtoICMP), or a range of TCP or UDP
// destination ports. The zero value admits nothing; use AnyPorts.
type Ports struct {
	Any    bool
	Proto  uint8  // ProtoTCP, ProtoUDP or ProtoICMP; zero when Any
	Lo, Hi uint16 // inclusive destination port range, for TCP and UDP
}

// AnyPorts admits every protocol and port: the "any" entry, and the default
// of a rule without ports.
var AnyPorts = Ports{Any: true}

// ErrPorts is matched by every error of ParsePorts.
var ErrPorts = errors.New("invalid port spec")

// ParsePorts parses one entry of a rule's ports list: "N/tcp", "N-M/tcp",
// "N/udp", "N-M/udp", "icmp" or "any". Ports run from 1 to 65535. The error
// matches ErrPorts and quotes the input.
func ParsePorts(s string) (Ports, error) {
	switch s {
	case "any":
		return AnyPorts, nil
	case "icmp":
		return Ports{Proto: ProtoICMP}, nil
	}
	num, proto, ok := strings.Cut(s, "/")
	if !ok {
		return Ports{}, portsError(s, `want "N/tcp", "N-M/udp", "icmp" or "any"`)
	}
	p := Ports{}
	switch proto {
	case "tcp":
		p.Proto = ProtoTCP
	case "udp":
		p.Proto = ProtoUDP
	default:
		return Ports{}, portsError(s, fmt.Sprintf("unknown protocol %q: want tcp or udp", proto))
	}
	lo, hi, isRange := strings.Cut(num, "-")
	var err error
	if p.Lo, err = parsePort(lo); err != nil {
		return Ports{}, portsError(s, err.Error())
	}
	p.Hi = p.Lo
	if isRange {
		if p.Hi, err = parsePort(hi); err != nil {
			return Ports{}, portsError(s, err.Error())
		}
		if p.Lo > p.Hi {
			return Ports{}, portsError(s, fmt.Sprintf("the range runs backwards: %d > %d", p.Lo, p.Hi))
		}
	}
	return p, nil
}

func parsePort(s string) (uint16, error) {
	// Digits only: no sign, no spaces, no base prefixes.
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %s is out of range 1..65535", s)
	}
	return uint16(n), nil
}

func portsError(s, why string) error {
	return fmt.Errorf("%w %q: %s", ErrPorts, s, why)
}

// String formats p as ParsePorts reads it.
func (p Ports) String() string {
	switch {
	case p.Any:
		return "any"
	case p.Proto == ProtoICMP:
		return "icmp"
	}
	proto := "tcp"
	if p.Proto == ProtoUDP {
		proto = "udp"
	}
	if p.Lo == p.Hi {
		return fmt.Sprintf("%d/%s", p.Lo, proto)
	}
	return fmt.Sprintf("%d-%d/%s", p.Lo, p.Hi, proto)
}

// ProtoName names an IP protocol number for messages: "tcp", "udp",
// "icmp", or "proto 47".
func ProtoName(proto uint8) string {
	switch proto {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP, ProtoICMPv6:
		return "icmp"
	}
	return "proto " + strconv.Itoa(int(proto))
}
