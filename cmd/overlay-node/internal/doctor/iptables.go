package doctor

import (
	"bufio"
	"slices"
	"strconv"
	"strings"
)

// parseIptablesSave reads the filter table of `iptables-save` (or
// ip6tables-save) output into a ruleset: the rules of a legacy iptables
// firewall, which nft does not list.
func parseIptablesSave(text []byte, family string) *ruleset {
	rs := &ruleset{tool: "iptables", chains: map[string]*fwChain{}}
	hooks := map[string]string{"INPUT": "input", "FORWARD": "forward", "OUTPUT": "output"}
	name := func(chain string) string { return family + " filter " + chain }
	inFilter := false
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "*"):
			inFilter = line == "*filter"
		case !inFilter:
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) < 2 {
				continue
			}
			c := &fwChain{name: name(f[0]), hook: hooks[f[0]], policy: strings.ToLower(f[1])}
			if c.policy == "-" {
				c.policy = ""
			}
			rs.chains[c.name] = c
			if c.hook != "" {
				rs.order = append(rs.order, c.name)
			}
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			if c := rs.chains[name(f[1])]; c != nil {
				c.rules = append(c.rules, iptablesRule(f[2:], name, line))
			}
		}
	}
	return rs
}

// iptablesRule reads the options of one -A line.
func iptablesRule(args []string, chainName func(string) string, line string) fwRule {
	r := fwRule{text: line}
	proto := ""
	neg := false
	for i := 0; i < len(args); i++ {
		opt := args[i]
		if opt == "!" {
			neg = true
			continue
		}
		val := ""
		if i+1 < len(args) {
			val = args[i+1]
		}
		var m fwMatch
		switch opt {
		case "-p", "--protocol":
			proto = val
			m = matchEq(protoOf, func(s string) bool { return s == val })
			i++
		case "-i", "--in-interface":
			m = matchEq(iifOf, ifaceMatch(val))
			i++
		case "-o", "--out-interface":
			m = matchEq(oifOf, ifaceMatch(val))
			i++
		case "--dport", "--destination-port", "--dports":
			if ports, ok := iptablesPorts(val); ok && proto != "" {
				r.matches = append(r.matches, portMatch(proto, ports, neg))
			} else {
				r.matches = append(r.matches, unknownMatch)
			}
			neg = false
			i++
			continue
		case "--ctstate", "--state":
			isNew := slices.Contains(strings.Split(val, ","), "NEW")
			m = func(packet) tri {
				if isNew {
					return yes
				}
				return no
			}
			i++
		case "-j", "-g":
			kind := map[string]string{"ACCEPT": "accept", "DROP": "drop", "REJECT": "drop", "RETURN": "return"}[val]
			switch {
			case kind != "":
				r.verdict = fwVerdict{kind: kind}
			case opt == "-g":
				r.verdict = fwVerdict{kind: "goto", target: chainName(val)}
			default:
				r.verdict = fwVerdict{kind: "jump", target: chainName(val)}
			}
			i++
			continue
		case "-m", "--comment":
			i++ // a module name or a comment: no condition of its own
			continue
		default:
			if strings.HasPrefix(opt, "-") {
				m = unknownMatch
				// Skip the option's values.
				for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && args[i+1] != "!" {
					i++
				}
			}
		}
		if m != nil {
			if neg {
				m = negate(m)
			}
			r.matches = append(r.matches, m)
		}
		neg = false
	}
	return r
}

// iptablesPorts reads "51820", "60000:60010" or "53,80,443".
func iptablesPorts(s string) ([][2]uint16, bool) {
	var out [][2]uint16
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		out = append(out, [2]uint16{uint16(a), uint16(b)})
	}
	return out, true
}
