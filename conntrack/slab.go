package conntrack

import "github.com/overlay-node/overlay-node/packet"

// entry is one tracked flow, or one remembered first fragment (which uses
// only key, hash and expires).
type entry struct {
	key        key
	hash       uint64
	expires    int64  // monotonic nanoseconds; the entry is dead from then on
	timeout    int64  // the idle timeout of the flow's protocol
	gen        uint32 // the generation that admitted or last re-checked the flow
	prev, next int32  // the recency list; next also chains the free list
	used       bool
	flipped    bool // the flow's first packet had the reverse of key's orientation
	closing    bool // a FIN or RST was seen
}

// refresh pushes e's deadline back for packet p of its flow.
func (e *entry) refresh(p *packet.Packet, now int64) {
	if p.Proto == packet.ProtoTCP && p.TCPFlags&(packet.TCPFlagFIN|packet.TCPFlagRST) != 0 {
		e.closing = true
	}
	if e.closing {
		e.expires = now + int64(ClosingLinger)
		return
	}
	e.expires = now + e.timeout
}

// firstPacket rebuilds the first packet of e's flow and its direction, for
// a re-check.
func (e *entry) firstPacket() (packet.Packet, Direction) {
	k := e.key
	if e.flipped {
		k.reverse()
	}
	return k.packet(), k.dir
}

// slab is a fixed-capacity hash table of entries: open addressing with
// linear probing and backward-shift deletion (no tombstones, so it never
// needs rehashing), over a slab of entries linked in order of use. All of
// its memory is allocated by init. It is not safe for concurrent use.
type slab struct {
	slots      []int32 // an entry's index + 1, or 0 when empty; at least twice as many as entries
	mask       uint64
	entries    []entry
	n          int   // entries in use
	free       int32 // first free entry, chained through next; -1 when full
	head, tail int32 // most and least recently used entry; -1 when empty
	cursor     int32 // the next entry the sweep looks at
}

func (s *slab) init(capacity int) {
	ns := 1
	for ns < 2*capacity {
		ns <<= 1
	}
	s.slots, s.mask = make([]int32, ns), uint64(ns-1)
	s.entries = make([]entry, capacity)
	for i := range s.entries {
		s.entries[i].next = int32(i + 1)
	}
	s.entries[capacity-1].next = -1
	s.free, s.head, s.tail = 0, -1, -1
}

func (s *slab) full() bool { return s.n == len(s.entries) }

// find returns the index of the entry with key k and hash h, or -1.
func (s *slab) find(k *key, h uint64) int32 {
	for j := h & s.mask; ; j = (j + 1) & s.mask {
		i := s.slots[j] - 1
		if i < 0 {
			return -1
		}
		if e := &s.entries[i]; e.hash == h && e.key == *k {
			return i
		}
	}
}

// insert adds an entry for k, which must be absent, into a slab that must
// not be full, as the most recently used, and returns its index.
func (s *slab) insert(k *key, h uint64) int32 {
	i := s.free
	e := &s.entries[i]
	s.free = e.next
	*e = entry{key: *k, hash: h, used: true}
	j := h & s.mask
	for s.slots[j] != 0 {
		j = (j + 1) & s.mask
	}
	s.slots[j] = i + 1
	s.n++
	s.pushFront(i)
	return i
}

// remove frees entry i.
func (s *slab) remove(i int32) {
	j := s.entries[i].hash & s.mask
	for s.slots[j] != i+1 {
		j = (j + 1) & s.mask
	}
	// Close the hole at j: move back each later entry of the run whose
	// home slot is not between the hole and where it sits.
	for k := (j + 1) & s.mask; s.slots[k] != 0; k = (k + 1) & s.mask {
		x := s.slots[k]
		if (k-s.entries[x-1].hash)&s.mask >= (k-j)&s.mask {
			s.slots[j] = x
			j = k
		}
	}
	s.slots[j] = 0
	s.unlink(i)
	e := &s.entries[i]
	e.used, e.next = false, s.free
	s.free = i
	s.n--
}

// touch marks entry i the most recently used.
func (s *slab) touch(i int32) {
	if s.head == i {
		return
	}
	s.unlink(i)
	s.pushFront(i)
}

func (s *slab) pushFront(i int32) {
	e := &s.entries[i]
	e.prev, e.next = -1, s.head
	if s.head >= 0 {
		s.entries[s.head].prev = i
	} else {
		s.tail = i
	}
	s.head = i
}

func (s *slab) unlink(i int32) {
	e := &s.entries[i]
	if e.prev >= 0 {
		s.entries[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.entries[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
}

// sweep looks at the next budget entries of the slab, in slab order, and
// removes those expired at now. It returns how many it removed.
func (s *slab) sweep(now int64, budget int) int {
	n := 0
	for range budget {
		i := s.cursor
		if s.cursor++; int(s.cursor) == len(s.entries) {
			s.cursor = 0
		}
		if e := &s.entries[i]; e.used && e.expires <= now {
			s.remove(i)
			n++
		}
	}
	return n
}
