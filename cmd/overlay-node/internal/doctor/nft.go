package doctor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// parseNft reads the output of `nft -j list ruleset` into a ruleset. text,
// the output of `nft -a list ruleset`, gives each rule its words for the
// report; without it a rule is named by its handle.
func parseNft(js, text []byte) (*ruleset, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("nft -j list ruleset: %w", err)
	}
	words := nftRuleText(text)
	rs := &ruleset{tool: "nft", chains: map[string]*fwChain{}}
	key := func(family, table, chain string) string { return family + " " + table + " " + chain }
	for _, obj := range doc.Nftables {
		if raw, ok := obj["chain"]; ok {
			var c struct {
				Family, Table, Name, Hook, Policy string
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				return nil, fmt.Errorf("nft chain: %w", err)
			}
			// Only the families a UDP datagram or an IP packet passes.
			if c.Family != "ip" && c.Family != "ip6" && c.Family != "inet" {
				continue
			}
			k := key(c.Family, c.Table, c.Name)
			rs.chains[k] = &fwChain{name: k, hook: c.Hook, policy: c.Policy}
			if c.Hook != "" {
				rs.order = append(rs.order, k)
			}
		}
		if raw, ok := obj["rule"]; ok {
			var r struct {
				Family, Table, Chain string
				Handle               int
				Expr                 []map[string]json.RawMessage
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return nil, fmt.Errorf("nft rule: %w", err)
			}
			c := rs.chains[key(r.Family, r.Table, r.Chain)]
			if c == nil {
				continue
			}
			rule := fwRule{text: words[fmt.Sprintf("%s %s %d", r.Family, r.Table, r.Handle)]}
			if rule.text == "" {
				rule.text = fmt.Sprintf("rule handle %d", r.Handle)
			}
			for _, e := range r.Expr {
				nftExpr(&rule, e, func(chain string) string { return key(r.Family, r.Table, chain) })
			}
			c.rules = append(c.rules, rule)
		}
	}
	return rs, nil
}

// nftExpr adds one statement of a rule: a match or a verdict. Statements
// that neither match nor decide (counter, log) are skipped.
func nftExpr(r *fwRule, e map[string]json.RawMessage, chainKey func(string) string) {
	for kind, raw := range e {
		switch kind {
		case "match":
			r.matches = append(r.matches, nftMatch(raw))
		case "accept":
			r.verdict = fwVerdict{kind: "accept"}
		case "drop", "reject":
			r.verdict = fwVerdict{kind: "drop"}
		case "return":
			r.verdict = fwVerdict{kind: "return"}
		case "jump", "goto":
			var t struct{ Target string }
			json.Unmarshal(raw, &t)
			r.verdict = fwVerdict{kind: kind, target: chainKey(t.Target)}
		}
	}
}

// nftMatch turns one match expression into a condition. What it does not
// model says maybe.
func nftMatch(raw json.RawMessage) fwMatch {
	var m struct {
		Op    string
		Left  map[string]json.RawMessage
		Right json.RawMessage
	}
	if json.Unmarshal(raw, &m) != nil {
		return unknownMatch
	}
	neg := m.Op == "!="
	if m.Op != "==" && m.Op != "!=" && m.Op != "in" {
		return unknownMatch
	}
	var f fwMatch = unknownMatch
	if p, ok := m.Left["payload"]; ok {
		var pl struct{ Protocol, Field string }
		json.Unmarshal(p, &pl)
		if (pl.Protocol == "udp" || pl.Protocol == "tcp") && pl.Field == "dport" {
			if ports, ok := nftPorts(m.Right); ok {
				return portMatch(pl.Protocol, ports, neg)
			}
		}
	}
	if meta, ok := m.Left["meta"]; ok {
		var k struct{ Key string }
		json.Unmarshal(meta, &k)
		names := nftStrings(m.Right)
		switch k.Key {
		case "iifname", "oifname":
			field := iifOf
			if k.Key == "oifname" {
				field = oifOf
			}
			f = matchEq(field, func(s string) bool {
				for _, n := range names {
					if ifaceMatch(n)(s) {
						return true
					}
				}
				return false
			})
		case "l4proto":
			f = matchEq(protoOf, func(s string) bool { return slices.Contains(names, s) })
		}
	}
	if ct, ok := m.Left["ct"]; ok {
		var k struct{ Key string }
		json.Unmarshal(ct, &k)
		if k.Key == "state" {
			// The packet of interest opens a flow: a peer's first
			// handshake initiation, or a container's first SYN.
			isNew := slices.Contains(nftStrings(m.Right), "new")
			f = func(packet) tri {
				if isNew {
					return yes
				}
				return no
			}
		}
	}
	if neg {
		return negate(f)
	}
	return f
}

// nftPorts reads a port, a range or a set of them.
func nftPorts(raw json.RawMessage) ([][2]uint16, bool) {
	var n uint16
	if json.Unmarshal(raw, &n) == nil {
		return [][2]uint16{{n, n}}, true
	}
	var r struct{ Range []uint16 }
	if json.Unmarshal(raw, &r) == nil && len(r.Range) == 2 {
		return [][2]uint16{{r.Range[0], r.Range[1]}}, true
	}
	var s struct{ Set []json.RawMessage }
	if json.Unmarshal(raw, &s) == nil && s.Set != nil {
		var out [][2]uint16
		for _, e := range s.Set {
			p, ok := nftPorts(e)
			if !ok {
				return nil, false
			}
			out = append(out, p...)
		}
		return out, true
	}
	return nil, false
}

// nftStrings reads a string, a list or a set of strings.
func nftStrings(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var set struct{ Set []string }
	json.Unmarshal(raw, &set)
	return set.Set
}

// nftRuleText maps "family table handle" to the rule's words in the
// output of `nft -a list ruleset`.
func nftRuleText(text []byte) map[string]string {
	out := map[string]string{}
	var table string
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "table" {
			table = f[1] + " " + f[2]
			continue
		}
		words, handle, ok := strings.Cut(line, " # handle ")
		if !ok || table == "" || strings.HasPrefix(words, "chain ") || strings.HasSuffix(words, "{") {
			continue
		}
		out[table+" "+handle] = words
	}
	return out
}
