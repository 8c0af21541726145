package config

import (
	"fmt"
	"net/netip"
)

// Containers: the [[node]] containers key, the networks a node hands to
// the containers on its host through the CNI plugin. They are routed like
// subnets; the checks they share with subnets are in validate.go.

func init() {
	examples["node.containers"] = `containers = ["172.20.1.0/24", "fd00:20:1::/64"]`
}

// containerProblem checks a container network beyond what subnetProblem
// checks: it must hold the bridge's gateway address and at least one
// container.
func containerProblem(p netip.Prefix) (msg, hint string) {
	if p.Bits() > p.Addr().BitLen()-2 {
		return fmt.Sprintf("%s is too small for containers", p),
			"it needs room for the bridge's gateway address and the containers: use at most /30 for IPv4, /126 for IPv6; e.g. /24 or /64"
	}
	return "", ""
}

// containerFamilies reports a node with two container networks of one
// family: the plugin gives each container one address of each family.
func (v *validator) containerFamilies(n *Node) {
	seen := map[bool]int{} // Is4 -> element
	for j, p := range n.Containers {
		first, dup := seen[p.Addr().Is4()]
		if !dup {
			seen[p.Addr().Is4()] = j
			continue
		}
		family := "IPv6"
		if p.Addr().Is4() {
			family = "IPv4"
		}
		v.add(n.src, "node", "containers", j, fmt.Sprintf("%s is a second %s container network%s", p, family, where(n.src, "containers", first)),
			"give a node at most one IPv4 and one IPv6 container network; widen the first instead")
	}
}
