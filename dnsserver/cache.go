package dnsserver

import (
	"encoding/binary"
	"slices"
	"sync"

	"github.com/overlay-node/overlay-node/dnszone"
)

// served is a zone and the replies packed from it, replaced together on
// a reload so that no reply outlives its zone.
type served struct {
	zone  *dnszone.Zone // nil: every name is outside the zone
	cache replyCache
}

// replyCache keeps replies from the zone, packed by the slow path, so that
// the next query for the same thing is answered by copying bytes: without
// parsing, packing or allocating. It keeps only replies packed without
// compression, which miekg/dns does for every reply that fits the
// client's size (see dns.Msg.Truncate). No name in such a reply points at
// the question, so the query's own question, in its own letter case, can
// be copied over the cached one; and the reply is the one for every
// client size it fits. It holds names the zone has, never names sent at
// random, and at most maxCacheBytes: when full, it starts again empty.
type replyCache struct {
	mu      sync.RWMutex
	replies map[string][]byte // by cacheKey
	bytes   int               // of keys and replies
}

// cacheKeySuffix is the length of what cacheKey appends to the name.
const cacheKeySuffix = 2 + 1 + 8

// cacheKey returns the key of q's reply: the name, the type, whether the
// query has EDNS0 and its DO bit, and the reachability of the instances
// the answer may hand out.
func (q *wireQuery) cacheKey(up dnszone.Up) []byte {
	k := q.key[:q.nameLen]
	k = binary.BigEndian.AppendUint16(k, q.qtype)
	var edns byte
	if q.edns {
		edns = 1
		if q.do {
			edns = 2
		}
	}
	k = append(k, edns)
	return binary.BigEndian.AppendUint64(k, up.Bits())
}

// get returns the reply kept under key, or nil. It is shared: do not
// change it.
func (c *replyCache) get(key []byte) []byte {
	c.mu.RLock()
	r := c.replies[string(key)]
	c.mu.RUnlock()
	return r
}

// put keeps a copy of reply under key.
func (c *replyCache) put(key, reply []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.replies[string(key)]; ok {
		return
	}
	if n := len(key) + len(reply); c.replies == nil || c.bytes+n > maxCacheBytes {
		c.replies, c.bytes = make(map[string][]byte), 0
	}
	c.replies[string(key)] = slices.Clone(reply)
	c.bytes += len(key) + len(reply)
}

// fromCache writes into buf the kept reply to q, read from raw, and
// returns it: the kept bytes with raw's ID, RD and CD bits, and question.
func fromCache(buf, kept, raw []byte, q *wireQuery) []byte {
	out := buf[:copy(buf, kept)]
	copy(out, raw[:2])
	out[2] = out[2]&^flagRD | raw[2]&flagRD
	out[3] = out[3]&^flagCD | raw[3]&flagCD
	copy(out[headerLen:q.qend], raw[headerLen:q.qend])
	return out
}
