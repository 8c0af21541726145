package crypto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/tai64n"
)

// This file is WireGuard's use of the Noise_IKpsk2 pattern in noise.go:
// its prologue, its payloads (a TAI64N timestamp, then nothing), the
// per-peer state machine, and the replay and flood checks on initiations.
//
// The state machine of one Handshake:
//
//	initiator: zeroed -CreateInitiation-> initiation created
//	                  -ConsumeResponse-> response consumed -DeriveKeys-> zeroed
//	responder: zeroed -ConsumeInitiation-> initiation consumed
//	                  -CreateResponse-> response created -DeriveKeys-> zeroed
//
// CreateInitiation and ConsumeInitiation are allowed in any state; they
// restart the handshake, as a retry or a simultaneous initiation must.

var (
	// ErrDecrypt reports a message that does not authenticate: a wrong
	// key, a garbled field or a low-order ephemeral key. It is the normal
	// fate of forged or corrupted packets; callers count it and move on.
	ErrDecrypt = errors.New("message does not authenticate")
	// ErrUnknownPeer reports an initiation, valid for our key, from a
	// static key that lookup does not know.
	ErrUnknownPeer = errors.New("initiation from unknown peer")
	// ErrStaleTimestamp reports an initiation whose timestamp is not newer
	// than the last one accepted from that peer: a replay. State is unchanged.
	ErrStaleTimestamp = errors.New("initiation timestamp is not newer than the last accepted")
	// ErrFlood reports an initiation that arrived less than
	// HandshakeInitiationRate after the last one accepted from that peer.
	ErrFlood = errors.New("initiations from peer arrive too fast")
	// ErrBadState reports a handshake step taken out of order, such as a
	// response nobody asked for.
	ErrBadState = errors.New("handshake step out of order")
)

// HandshakeInitiationRate is the shortest interval at which a responder
// consumes initiations from one peer. A peer retries every 5 s, so anything
// faster is a flood or a replay of fresh captures.
const HandshakeInitiationRate = time.Second / 50

// wireguardPrologue is the prologue of every WireGuard handshake.
var wireguardPrologue = []byte(wireguardIdentifier)

// Identity is the local static key pair with the values derived from it
// that every handshake needs. It is immutable, so safe for concurrent use.
type Identity struct {
	private PrivateKey
	public  PublicKey
	// responder is the symmetric state after "<- s" with our own key: the
	// start of every initiation we consume.
	responder symmetricState
}

// NewIdentity returns the identity of the private key k.
func NewIdentity(k PrivateKey) *Identity {
	id := &Identity{private: k, public: k.PublicKey()}
	id.responder = newSymmetricState(wireguardPrologue, id.public)
	return id
}

// PublicKey returns the identity's public key.
func (id *Identity) PublicKey() PublicKey { return id.public }

type handshakeState uint8

const (
	stateZeroed handshakeState = iota
	stateInitiationCreated
	stateInitiationConsumed
	stateResponseCreated
	stateResponseConsumed
)

// Handshake is the handshake state of the local identity with one peer. It
// is safe for concurrent use. One exists per peer for the peer's lifetime,
// because it also remembers the newest initiation timestamp accepted,
// which is what makes replayed initiations fail.
type Handshake struct {
	// Immutable after NewHandshake.
	local  *Identity
	remote PublicKey
	psk    PresharedKey
	start  symmetricState // state after "<- s" with the remote's key
	// newEphemeral makes ephemeral keys; tests replace it to make
	// handshakes reproducible.
	newEphemeral func() (PrivateKey, error)

	mu sync.Mutex
	// Guarded by mu. ss is DH(local static, remote static), fixed per pair
	// but computed on first use: a mesh of thousands of mostly idle peers
	// should not pay a Curve25519 operation per peer at start. All zero
	// until then: X25519 never yields zero for a key we accept.
	ss [KeySize]byte
	// Guarded by mu; zeroed by Clear and DeriveKeys.
	state           handshakeState
	noise           symmetricState
	ephemeral       PrivateKey
	remoteEphemeral PublicKey
	// Guarded by mu; kept across Clear so replay protection survives it.
	lastTimestamp  tai64n.Timestamp // newest initiation timestamp accepted
	lastInitiation time.Time        // when that initiation was accepted
	lastSent       tai64n.Timestamp // newest timestamp we sent
}

// NewHandshake returns the handshake state with the peer remote, using psk
// as the preshared key (zero for none). It returns ErrLowOrderKey if remote
// is low order: no session with such a key can be secret.
func (id *Identity) NewHandshake(remote PublicKey, psk PresharedKey) (*Handshake, error) {
	if remote.IsLowOrder() {
		return nil, fmt.Errorf("peer %v: %w", remote, ErrLowOrderKey)
	}
	return &Handshake{
		local:  id,
		remote: remote,
		psk:    psk,
		start:  newSymmetricState(wireguardPrologue, remote),

		newEphemeral: GeneratePrivateKey,
	}, nil
}

// staticSecretLocked computes ss on first use. h.mu must be held.
func (h *Handshake) staticSecretLocked() error {
	if h.ss != ([KeySize]byte{}) {
		return nil
	}
	ss, err := h.local.private.sharedSecret(h.remote)
	if err != nil {
		return fmt.Errorf("peer %v: %w", h.remote, err)
	}
	h.ss = ss
	return nil
}

// RemoteKey returns the static public key of the peer.
func (h *Handshake) RemoteKey() PublicKey { return h.remote }

// CreateInitiation starts a handshake as initiator and returns the Noise
// part of the initiation message. The timestamp comes from now, whitened
// to about 16 ms as WireGuard does so that it leaks little about the
// host's clock, and is strictly newer than any this Handshake made before
// (the responder drops anything else as a replay).
func (h *Handshake) CreateInitiation(now time.Time) (Initiation, error) {
	e, err := h.newEphemeral()
	if err != nil {
		return Initiation{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()

	if err := h.staticSecretLocked(); err != nil {
		return Initiation{}, err
	}
	ts := nextTimestamp(h.lastSent, now)
	st := h.start
	m, err := st.writeMessageOne(h.local, &e, h.remote, &h.ss, ts[:])
	if err != nil {
		return Initiation{}, err
	}
	msg := Initiation{Ephemeral: m.ephemeral, Static: m.static}
	copy(msg.Timestamp[:], m.payload)

	h.clearLocked()
	h.noise = st
	h.ephemeral = e
	h.lastSent = ts
	h.state = stateInitiationCreated
	return msg, nil
}

// ConsumeInitiation processes an initiation addressed to id. lookup maps
// the initiator's static key to its Handshake, or returns nil. On success
// the Handshake is in "initiation consumed" state, ready for CreateResponse.
//
// Errors: ErrDecrypt (forged or garbled), ErrUnknownPeer, ErrStaleTimestamp
// and ErrFlood. On any error no state changes.
func (id *Identity) ConsumeInitiation(msg *Initiation, now time.Time, lookup func(PublicKey) *Handshake) (*Handshake, error) {
	st := id.responder
	m := messageOne{ephemeral: msg.Ephemeral, static: msg.Static, payload: msg.Timestamp[:]}
	remote, err := st.readMessageOneStatic(id, &m)
	if err != nil {
		return nil, err
	}
	h := lookup(remote)
	if h == nil || !h.remote.Equal(remote) {
		return nil, ErrUnknownPeer
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.staticSecretLocked(); err != nil {
		return nil, err
	}
	var ts tai64n.Timestamp
	if _, err := st.readMessageOnePayload(ts[:0], &h.ss, &m); err != nil {
		return nil, err
	}
	// Both checks come after authentication: only the peer itself can
	// make an initiation that gets this far, so only it can be refused.
	if !ts.After(h.lastTimestamp) {
		return nil, ErrStaleTimestamp
	}
	if !h.lastInitiation.IsZero() && now.Sub(h.lastInitiation) < HandshakeInitiationRate {
		return nil, ErrFlood
	}

	h.clearLocked()
	h.noise = st
	h.remoteEphemeral = msg.Ephemeral
	h.lastTimestamp = ts
	h.lastInitiation = now
	h.state = stateInitiationConsumed
	return h, nil
}

// CreateResponse answers the initiation consumed last and returns the Noise
// part of the response message. It returns ErrBadState unless the state is
// "initiation consumed".
func (h *Handshake) CreateResponse() (Response, error) {
	e, err := h.newEphemeral()
	if err != nil {
		return Response{}, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateInitiationConsumed {
		return Response{}, ErrBadState
	}
	st := h.noise
	m, err := st.writeMessageTwo(&e, h.remoteEphemeral, h.remote, &h.psk, nil)
	if err != nil {
		return Response{}, err
	}
	msg := Response{Ephemeral: m.ephemeral}
	copy(msg.Empty[:], m.payload)

	h.noise = st
	h.ephemeral = e
	h.state = stateResponseCreated
	return msg, nil
}

// ConsumeResponse processes the response to the initiation created last.
// It returns ErrBadState unless the state is "initiation created", and
// ErrDecrypt if the response does not authenticate; either way no state
// changes, so a forged response cannot cancel a genuine one in flight.
func (h *Handshake) ConsumeResponse(msg *Response) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateInitiationCreated {
		return ErrBadState
	}
	st := h.noise
	m := messageTwo{ephemeral: msg.Ephemeral, payload: msg.Empty[:]}
	if _, err := st.readMessageTwo(nil, h.local, &h.ephemeral, &h.psk, &m); err != nil {
		return err
	}
	h.noise = st
	h.remoteEphemeral = msg.Ephemeral
	h.state = stateResponseConsumed
	return nil
}

// DeriveKeys ends the handshake and returns the session's transport keys:
// after CreateResponse on the responder, after ConsumeResponse on the
// initiator (ErrBadState otherwise). The handshake secrets are zeroed so
// that a later compromise of the process cannot recover this session's
// keys from them.
func (h *Handshake) DeriveKeys() (*Keypair, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var initiator bool
	switch h.state {
	case stateResponseConsumed:
		initiator = true
	case stateResponseCreated:
		initiator = false
	default:
		return nil, ErrBadState
	}
	kp := deriveKeypair(&h.noise, initiator)
	h.clearLocked()
	return kp, nil
}

// deriveKeypair splits the finished symmetric state s into the transport
// keypair of one side. The initiator sends with the first key.
func deriveKeypair(s *symmetricState, initiator bool) *Keypair {
	i2r, r2i := s.split()
	defer clear(i2r[:])
	defer clear(r2i[:])
	if initiator {
		return newKeypair(&i2r, &r2i, true)
	}
	return newKeypair(&r2i, &i2r, false)
}

// Clear abandons any handshake in progress and zeroes its secrets. The
// replay state (newest timestamps seen and sent) is kept on purpose.
func (h *Handshake) Clear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clearLocked()
}

func (h *Handshake) clearLocked() {
	h.state = stateZeroed
	h.noise.clear()
	clear(h.ephemeral[:])
	clear(h.remoteEphemeral[:])
}

const (
	// tai64Epoch is the TAI64 label of 1970-01-01 00:00:10 TAI, which is
	// UTC's epoch; WireGuard ignores later leap seconds, as we must too.
	tai64Epoch = 0x400000000000000a
	// whitenerMask drops the low 24 bits of the nanoseconds so that the
	// timestamp does not give away a fine-grained clock.
	whitenerMask = 1<<24 - 1
)

// stamp returns the whitened TAI64N label of t.
func stamp(t time.Time) tai64n.Timestamp {
	var ts tai64n.Timestamp
	binary.BigEndian.PutUint64(ts[:8], tai64Epoch+uint64(t.Unix()))
	binary.BigEndian.PutUint32(ts[8:], uint32(t.Nanosecond())&^whitenerMask)
	return ts
}

// nextTimestamp returns the stamp of now, or if that is not newer than
// last (two initiations within one whitened slot, or a clock that went
// back), the next whitened slot after last.
func nextTimestamp(last tai64n.Timestamp, now time.Time) tai64n.Timestamp {
	ts := stamp(now)
	if ts.After(last) {
		return ts
	}
	secs := binary.BigEndian.Uint64(last[:8])
	nanos := uint64(binary.BigEndian.Uint32(last[8:])) + whitenerMask + 1
	if nanos >= uint64(time.Second) {
		secs, nanos = secs+1, 0
	}
	binary.BigEndian.PutUint64(ts[:8], secs)
	binary.BigEndian.PutUint32(ts[8:], uint32(nanos))
	return ts
}
