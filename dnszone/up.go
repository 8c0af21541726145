package dnszone

// MaxUp is the most instances an Up records: one bit each in a uint64.
const MaxUp = 64

// Up is which of the instances an answer may hand out are on reachable
// nodes, as Zone.Up recorded them from a Health. It is a Health itself,
// answering as recorded, so that an answer built from it is a function
// of the name, the type and Bits: a server may keep the answer and give it
// again to queries for which Zone.Up records the same Bits. The zero Up
// records no instance.
type Up struct {
	pool []*instance
	bits uint64
}

// Up asks h, as Answer does, about each instance of a service that an
// answer for name and qtype may hand out, and records the replies. name
// is a lower-case FQDN, in bytes so that a caller can look it up without
// allocating. ok is false for a name the zone does not hold, and for one
// with more than MaxUp instances. h nil means all are reachable.
func (z *Zone) Up(name []byte, qtype uint16, h Health) (up Up, ok bool) {
	e := z.names[string(name)]
	if e == nil {
		return Up{}, false
	}
	up.pool = e.pool(qtype)
	if len(up.pool) > MaxUp {
		return Up{}, false
	}
	for i, in := range up.pool {
		if h == nil || h.Reachable(in.node) {
			up.bits |= 1 << i
		}
	}
	return up, true
}

// Bits returns the record: bit i is set when the i-th instance was
// reachable. Two Ups of the same name and type are the same record if
// their Bits are equal.
func (u Up) Bits() uint64 { return u.bits }

// Reachable implements Health: as recorded for node, and true for a node
// the record does not hold.
func (u Up) Reachable(node string) bool {
	for i, in := range u.pool {
		if in.node == node {
			return u.bits&(1<<i) != 0
		}
	}
	return true
}
