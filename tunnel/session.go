package tunnel

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
)

// session is one derived keypair and the indexes both sides use for it.
// Immutable once published, except for the keypair's own atomic counters.
type session struct {
	kp          *crypto.Keypair
	peer        *Peer
	localIndex  uint32
	remoteIndex uint32
	created     time.Time
}

// expired reports whether the session is past RejectAfterTime.
func (s *session) expired(now time.Time) bool {
	return now.Sub(s.created) >= RejectAfterTime
}

// indexEntry is what a receiver index names: a peer's handshake in flight
// (sess == nil) or one of its sessions.
type indexEntry struct {
	peer *Peer
	sess *session
}

// indexTable maps our random 32-bit receiver indexes to peers and sessions,
// so a transport packet finds its keys with one lookup.
type indexTable struct {
	mu sync.RWMutex
	m  map[uint32]indexEntry
}

func newIndexTable() *indexTable {
	return &indexTable{m: make(map[uint32]indexEntry)}
}

// allocate reserves a fresh random index for peer's handshake.
func (t *indexTable) allocate(peer *Peer) uint32 {
	var b [4]byte
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic("crypto/rand failed: " + err.Error()) // the kernel RNG does not fail
		}
		idx := binary.LittleEndian.Uint32(b[:])
		if _, used := t.m[idx]; !used {
			t.m[idx] = indexEntry{peer: peer}
			return idx
		}
	}
}

// bind attaches a derived session to the index its handshake reserved.
func (t *indexTable) bind(idx uint32, s *session) {
	t.mu.Lock()
	t.m[idx] = indexEntry{peer: s.peer, sess: s}
	t.mu.Unlock()
}

func (t *indexTable) lookup(idx uint32) (indexEntry, bool) {
	t.mu.RLock()
	e, ok := t.m[idx]
	t.mu.RUnlock()
	return e, ok
}

func (t *indexTable) release(idx uint32) {
	t.mu.Lock()
	delete(t.m, idx)
	t.mu.Unlock()
}
