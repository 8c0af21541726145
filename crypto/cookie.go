package crypto

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"hash"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// WireGuard's DoS defence (whitepaper section 5.3). Every handshake message
// ends in two MACs:
//
//	mac1 = MAC(HASH("mac1----" || receiver's public key), msg up to mac1)
//	mac2 = MAC(cookie, msg up to mac2), or zeros without a cookie
//
// mac1 proves that the sender knows our public key, so a responder drops
// anything without it before doing any Curve25519 work. Under load the
// responder also wants mac2: it answers a message lacking one with a cookie
// reply, an encryption of cookie = MAC(secret, source address) that only
// the owner of that address receives, and the sender then proves it with
// mac2 on its retry. The secret changes every CookieRefreshTime, so cookies
// expire.

// CookieRefreshTime is how long a cookie secret (responder) and a received
// cookie (initiator) stay valid.
const CookieRefreshTime = 120 * time.Second

// fresh reports whether a secret or cookie made at set is still good at
// now: set, younger than CookieRefreshTime, and not in the future (the
// clock went back).
func fresh(set, now time.Time) bool {
	age := now.Sub(set)
	return !set.IsZero() && age >= 0 && age < CookieRefreshTime
}

const (
	labelMAC1   = "mac1----"
	labelCookie = "cookie--"
)

var (
	// ErrShortMessage reports a message too short to hold mac1 and mac2.
	ErrShortMessage = errors.New("message too short for mac1 and mac2")
	// ErrUnexpectedCookie reports a cookie reply when no message with a
	// mac1 is outstanding, so there is nothing it could answer.
	ErrUnexpectedCookie = errors.New("cookie reply without a message to answer")
)

// macOffsets returns where mac1 and mac2 start in a handshake message.
func macOffsets(msg []byte) (mac1, mac2 int, ok bool) {
	if len(msg) < 2*MACSize {
		return 0, 0, false
	}
	mac2 = len(msg) - MACSize
	return mac2 - MACSize, mac2, true
}

// CookieChecker is the responder's side: it checks mac1 and mac2 of
// incoming handshake messages and makes cookie replies. It is safe for
// concurrent use.
type CookieChecker struct {
	// Immutable after NewCookieChecker.
	mac1   *keyedMAC   // keyed with HASH("mac1----" || local key)
	sealer cipher.AEAD // XChaCha20-Poly1305 under HASH("cookie--" || local key): seals replies
	random io.Reader   // crypto/rand; tests make it reproducible

	mu sync.RWMutex
	// Guarded by mu.
	secret    [KeySize]byte
	secretSet time.Time // zero until the first reply: no cookie is valid
}

// NewCookieChecker returns the checker for messages sent to local.
func NewCookieChecker(local PublicKey) *CookieChecker {
	key := hashSum([]byte(labelCookie), local[:])
	sealer, _ := chacha20poly1305.NewX(key[:]) // a 32-byte key: cannot fail
	return &CookieChecker{
		mac1:   newKeyedMAC(hashSum([]byte(labelMAC1), local[:])),
		sealer: sealer,
		random: rand.Reader,
	}
}

// CheckMAC1 reports whether the whole marshalled handshake message msg
// carries a valid mac1. It does not allocate.
func (c *CookieChecker) CheckMAC1(msg []byte) bool {
	o1, o2, ok := macOffsets(msg)
	return ok && c.mac1.verify(msg[:o1], msg[o1:o2])
}

// CheckMAC2 reports whether msg carries a valid mac2 for the source
// address src (IP bytes then port). Only cookies made from the current
// secret pass, and only while it is younger than CookieRefreshTime as of
// now: a cookie is good for two minutes, as in WireGuard, even if no reply
// has replaced the secret since.
func (c *CookieChecker) CheckMAC2(msg, src []byte, now time.Time) bool {
	_, o2, ok := macOffsets(msg)
	if !ok || allZero(msg[o2:]) {
		// A sender without a cookie sends a zero mac2; no cookie makes
		// one but with chance 2^-128. Skipping the two BLAKE2s calls is
		// what keeps a flood of such messages cheap.
		return false
	}
	c.mu.RLock()
	if !fresh(c.secretSet, now) {
		c.mu.RUnlock()
		return false
	}
	cookie := mac(c.secret[:], src)
	c.mu.RUnlock()
	want := mac(cookie[:], msg[:o2])
	return subtle.ConstantTimeCompare(want[:], msg[o2:]) == 1
}

// CreateReply returns the cookie reply to msg from src. The cookie is
// sealed with msg's mac1 as associated data, so only the sender of msg can
// use it. The secret is replaced first if it is CookieRefreshTime old as
// of now (or if now is before it was made: the clock went back).
func (c *CookieChecker) CreateReply(msg, src []byte, now time.Time) (CookieReply, error) {
	o1, o2, ok := macOffsets(msg)
	if !ok {
		return CookieReply{}, ErrShortMessage
	}
	var reply CookieReply
	if _, err := io.ReadFull(c.random, reply.Nonce[:]); err != nil {
		return CookieReply{}, err
	}

	c.mu.Lock()
	if !fresh(c.secretSet, now) {
		if _, err := io.ReadFull(c.random, c.secret[:]); err != nil {
			c.mu.Unlock()
			return CookieReply{}, err
		}
		c.secretSet = now
	}
	cookie := mac(c.secret[:], src)
	c.mu.Unlock()

	c.sealer.Seal(reply.Cookie[:0], reply.Nonce[:], cookie[:], msg[o1:o2])
	return reply, nil
}

// CookieGenerator is the sender's side for one peer: it adds mac1 and mac2
// to the handshake messages we send to that peer and keeps the cookie the
// peer last sent. It is safe for concurrent use.
type CookieGenerator struct {
	// Immutable after NewCookieGenerator.
	mac1Key   [KeySize]byte // HASH("mac1----" || remote key)
	cookieKey [KeySize]byte // HASH("cookie--" || remote key)

	mu sync.Mutex
	// Guarded by mu.
	lastMAC1    [MACSize]byte // mac1 of the last message sent
	hasLastMAC1 bool          // a cookie reply to it may be consumed
	cookie      [CookieSize]byte
	cookieSet   time.Time // zero: no cookie
}

// NewCookieGenerator returns the generator for messages sent to remote.
func NewCookieGenerator(remote PublicKey) *CookieGenerator {
	return &CookieGenerator{
		mac1Key:   hashSum([]byte(labelMAC1), remote[:]),
		cookieKey: hashSum([]byte(labelCookie), remote[:]),
	}
}

// AddMACs writes mac1 and mac2 into the last 32 bytes of the whole
// marshalled handshake message msg. mac2 is zero unless the generator holds
// a cookie received less than CookieRefreshTime before now. A msg shorter
// than two MACs is left unchanged.
func (g *CookieGenerator) AddMACs(msg []byte, now time.Time) {
	o1, o2, ok := macOffsets(msg)
	if !ok {
		return
	}
	m1 := mac(g.mac1Key[:], msg[:o1])
	copy(msg[o1:o2], m1[:])

	g.mu.Lock()
	defer g.mu.Unlock()
	g.lastMAC1 = m1
	g.hasLastMAC1 = true
	if !fresh(g.cookieSet, now) {
		clear(msg[o2:])
		return
	}
	m2 := mac(g.cookie[:], msg[:o2])
	copy(msg[o2:], m2[:])
}

// ConsumeReply takes the cookie out of a cookie reply to the last message
// sent. It returns ErrUnexpectedCookie if no message is waiting for one
// and ErrDecrypt if the reply does not authenticate, and then changes
// nothing. Each sent message accepts one reply.
func (g *CookieGenerator) ConsumeReply(reply *CookieReply, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.hasLastMAC1 {
		return ErrUnexpectedCookie
	}
	aead, _ := chacha20poly1305.NewX(g.cookieKey[:])
	var cookie [CookieSize]byte
	if _, err := aead.Open(cookie[:0], reply.Nonce[:], reply.Cookie[:], g.lastMAC1[:]); err != nil {
		return ErrDecrypt
	}
	g.cookie = cookie
	g.cookieSet = now
	g.hasLastMAC1 = false
	return nil
}

// keyedMAC verifies MACs under one fixed key without allocating: BLAKE2s
// states are expensive to make, so finished ones go back to a pool and
// are Reset, which restores the keyed initial state.
type keyedMAC struct {
	pool sync.Pool
}

type macState struct {
	h   hash.Hash
	sum [MACSize]byte
}

func newKeyedMAC(key [KeySize]byte) *keyedMAC {
	m := new(keyedMAC)
	m.pool.New = func() any {
		h, _ := blake2s.New128(key[:]) // 32-byte key: cannot fail
		return &macState{h: h}
	}
	return m
}

// verify reports whether MAC(key, data) equals want, in constant time.
func (m *keyedMAC) verify(data, want []byte) bool {
	s := m.pool.Get().(*macState)
	s.h.Reset()
	s.h.Write(data)
	ok := subtle.ConstantTimeCompare(s.h.Sum(s.sum[:0]), want) == 1
	m.pool.Put(s)
	return ok
}

// allZero reports whether b holds only zeros.
func allZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}
