package crypto

import (
	"sync"
	"sync/atomic"

	"github.com/overlay-node/overlay-node/crypto/chachapoly"
	"golang.zx2c4.com/wireguard/replay"
)

// Specification constants for the message counters of one session.
const (
	// RekeyAfterMessages is the number of messages after which the sender
	// starts a new handshake.
	RekeyAfterMessages = 1 << 60
	// RejectAfterMessages is the number of messages after which a session
	// is used no more, for sending or receiving. It stays clear of 2^64 by
	// more than the replay window, so a counter never wraps.
	RejectAfterMessages = 1<<64 - 1<<13 - 1
)

// Keypair is the transport state of one session: a key and counter for
// each direction and the replay window. Seal and Open are safe to call
// from many goroutines at once (the AEADs are immutable); the counter is
// atomic and the window has its own mutex.
type Keypair struct {
	// Immutable after newKeypair.
	send        *chachapoly.Key
	recv        *chachapoly.Key
	isInitiator bool

	// Atomic: the next counter to send.
	sendCounter atomic.Uint64

	// Guarded by mu.
	mu     sync.Mutex
	replay replay.Filter
}

// newKeypair returns a keypair sending with send and receiving with recv.
func newKeypair(send, recv *[KeySize]byte, initiator bool) *Keypair {
	kp := &Keypair{isInitiator: initiator}
	kp.send = chachapoly.New(send)
	kp.recv = chachapoly.New(recv)
	return kp
}

// IsInitiator reports whether the local side initiated the handshake that
// made k. Only the initiator may send first; the responder waits for a
// packet, which confirms the session.
func (k *Keypair) IsInitiator() bool { return k.isInitiator }

// NextSendCounter reserves the next send counter. It returns false once
// RejectAfterMessages counters are used: the session must not send any
// more, and the caller needs a new handshake. Each counter is returned
// once, so concurrent senders never share a nonce.
func (k *Keypair) NextSendCounter() (uint64, bool) {
	n := k.sendCounter.Add(1) - 1
	if n >= RejectAfterMessages {
		return 0, false
	}
	return n, true
}

// SendCount returns how many send counters have been reserved, which is
// what RekeyAfterMessages is compared against.
func (k *Keypair) SendCount() uint64 { return k.sendCounter.Load() }

// Seal appends the encryption of plaintext under the send key and counter
// to dst and returns the result, len(plaintext)+TagSize bytes longer. The
// counter must come from NextSendCounter. To seal in place pass
// dst = plaintext[:0] with TagSize bytes of spare capacity; any other
// overlap of dst and plaintext panics. It does not allocate when dst has
// the capacity.
func (k *Keypair) Seal(dst []byte, counter uint64, plaintext []byte) []byte {
	return k.send.Seal(dst, counter, plaintext)
}

// Open appends the decryption of ciphertext under the receive key and
// counter to dst and returns the result, or ErrDecrypt if it does not
// authenticate (which includes a ciphertext shorter than a tag). To open
// in place pass dst = ciphertext[:0]. On failure the bytes of dst's
// capacity that the plaintext would have used may be overwritten. Open does
// not consult the replay window: call AcceptCounter after it succeeds.
// It does not allocate.
func (k *Keypair) Open(dst []byte, counter uint64, ciphertext []byte) ([]byte, error) {
	out, err := k.recv.Open(dst, counter, ciphertext)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// AcceptCounter records counter as received and reports whether the packet
// may be accepted: false when it was seen before, lies more than the
// window (8128 messages) behind the newest, or is not below
// RejectAfterMessages.
//
// Call it only after Open succeeded with that counter. The window moves
// forward with every accepted counter, so a forged packet that got here
// without authenticating could push it ahead and make genuine packets
// look old.
func (k *Keypair) AcceptCounter(counter uint64) bool {
	k.mu.Lock()
	ok := k.replay.ValidateCounter(counter, RejectAfterMessages)
	k.mu.Unlock()
	return ok
}
