package crypto

import "errors"

// This file is the Noise_IKpsk2 pattern itself, independent of WireGuard's
// framing:
//
//	IKpsk2:
//	  <- s
//	  ...
//	  -> e, es, s, ss
//	  <- e, ee, se, psk
//
// The prologue, the payloads and the ephemeral keys are parameters, so the
// public Noise test vector runs through exactly the code that WireGuard
// messages use (handshake.go supplies WireGuard's identifier as prologue,
// a TAI64N timestamp as the first payload and nothing as the second).
//
// Every step takes and returns the symmetric state by pointer and writes
// into it only when the step succeeds as a whole, so a message that fails
// to authenticate leaves the caller's copy untouched.

const (
	// noiseConstruction is the Noise protocol name; its hash is the first
	// chaining key.
	noiseConstruction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
	// wireguardIdentifier is WireGuard's prologue.
	wireguardIdentifier = "WireGuard v1 zx2c4 Jason@zx2c4.com"
)

// initialChainKey is HASH(construction). The construction name is longer
// than a hash, so Noise hashes it rather than padding it.
var initialChainKey = hashSum([]byte(noiseConstruction))

// symmetricState is Noise's SymmetricState minus the cipher state: the
// chaining key ck and the handshake hash h. Each handshake key is used for
// one encryption only, so keys are returned to the caller instead of being
// kept with a nonce counter.
type symmetricState struct {
	ck [KeySize]byte
	h  [KeySize]byte
}

// newSymmetricState returns the state both sides hold before the first
// message: InitializeSymmetric(name), MixHash(prologue), and the IK
// pre-message "<- s", MixHash(responder's static key).
func newSymmetricState(prologue []byte, responder PublicKey) symmetricState {
	s := symmetricState{ck: initialChainKey}
	s.h = hashSum(s.ck[:], prologue)
	s.mixHash(responder[:])
	return s
}

// mixHash sets h = HASH(h || data).
func (s *symmetricState) mixHash(data []byte) { s.h = hashSum(s.h[:], data) }

// mixKey sets ck, k = KDF2(ck, input) and returns k.
func (s *symmetricState) mixKey(input []byte) [KeySize]byte {
	var k [KeySize]byte
	s.ck, k = kdf2(&s.ck, input)
	return k
}

// mixKeyAndHash is Noise's psk step: ck, t, k = KDF3(ck, psk); h = HASH(h || t).
func (s *symmetricState) mixKeyAndHash(psk *PresharedKey) [KeySize]byte {
	var t, k [KeySize]byte
	s.ck, t, k = kdf3(&s.ck, psk[:])
	s.mixHash(t[:])
	clear(t[:])
	return k
}

// mixEphemeral is the "e" token in a psk handshake: the ephemeral public
// key goes into both h and ck (Noise section 9.2), which is why WireGuard's
// specification has C = KDF1(C, E.pub) there.
func (s *symmetricState) mixEphemeral(e PublicKey) {
	s.ck = kdf1(&s.ck, e[:])
	s.mixHash(e[:])
}

// encryptAndHash appends AEAD(k, 0, plaintext, h) to dst and mixes the
// ciphertext into h.
func (s *symmetricState) encryptAndHash(dst []byte, k *[KeySize]byte, plaintext []byte) []byte {
	start := len(dst)
	dst = aeadSeal(dst, k, plaintext, s.h[:])
	s.mixHash(dst[start:])
	return dst
}

// decryptAndHash appends the plaintext of ciphertext to dst and mixes the
// ciphertext into h. On failure it returns ErrDecrypt and h is unchanged.
func (s *symmetricState) decryptAndHash(dst []byte, k *[KeySize]byte, ciphertext []byte) ([]byte, error) {
	out, err := aeadOpen(dst, k, ciphertext, s.h[:])
	if err != nil {
		return nil, err
	}
	s.mixHash(ciphertext)
	return out, nil
}

// split returns the two transport keys: the first encrypts from initiator
// to responder, the second the other way. The state is zeroed, since
// nothing may be derived from it afterwards.
func (s *symmetricState) split() (initiatorToResponder, responderToInitiator [KeySize]byte) {
	initiatorToResponder, responderToInitiator = kdf2(&s.ck, nil)
	s.clear()
	return initiatorToResponder, responderToInitiator
}

func (s *symmetricState) clear() {
	clear(s.ck[:])
	clear(s.h[:])
}

// messageOne is "-> e, es, s, ss" with its payload: the three fields
// WireGuard's initiation carries, with a payload of any length.
type messageOne struct {
	ephemeral PublicKey
	static    [EncryptedStatic]byte
	payload   []byte // sealed payload: len(plaintext) + TagSize bytes
}

// messageTwo is "<- e, ee, se, psk" with its payload.
type messageTwo struct {
	ephemeral PublicKey
	payload   []byte // sealed payload
}

// writeMessageOne runs the initiator's side of the first message on s.
// local is the initiator's static key pair, e its fresh ephemeral, rs the
// responder's static key, and ss the static-static DH (precomputed by the
// caller because it never changes for a pair of peers).
func (s *symmetricState) writeMessageOne(local *Identity, e *PrivateKey, rs PublicKey, ss *[KeySize]byte, payload []byte) (messageOne, error) {
	st := *s
	var m messageOne
	m.ephemeral = e.PublicKey()
	st.mixEphemeral(m.ephemeral)

	es, err := e.sharedSecret(rs)
	if err != nil {
		return messageOne{}, err
	}
	k := st.mixKey(es[:])
	clear(es[:])
	st.encryptAndHash(m.static[:0], &k, local.public[:])

	k = st.mixKey(ss[:])
	m.payload = st.encryptAndHash(nil, &k, payload)
	clear(k[:])
	*s = st
	return m, nil
}

// readMessageOneStatic is the responder's first half of the first message,
// "e, es, s": it returns the initiator's static key. It stops there because
// the caller must look that key up to find the static-static DH (and the
// peer's state) before it can finish with readMessageOnePayload.
func (s *symmetricState) readMessageOneStatic(local *Identity, m *messageOne) (PublicKey, error) {
	st := *s
	st.mixEphemeral(m.ephemeral)
	es, err := local.private.sharedSecret(m.ephemeral)
	if err != nil {
		// A low-order ephemeral is a malformed message like any other,
		// and callers count it as such; the cause stays visible.
		return PublicKey{}, errors.Join(ErrDecrypt, err)
	}
	k := st.mixKey(es[:])
	clear(es[:])
	var rs PublicKey
	if _, err := st.decryptAndHash(rs[:0], &k, m.static[:]); err != nil {
		return PublicKey{}, err
	}
	*s = st
	return rs, nil
}

// readMessageOnePayload finishes the first message, "ss" and the payload,
// appending the plaintext payload to dst.
func (s *symmetricState) readMessageOnePayload(dst []byte, ss *[KeySize]byte, m *messageOne) ([]byte, error) {
	st := *s
	k := st.mixKey(ss[:])
	out, err := st.decryptAndHash(dst, &k, m.payload)
	clear(k[:])
	if err != nil {
		return nil, err
	}
	*s = st
	return out, nil
}

// writeMessageTwo runs the responder's side of the second message. e is the
// responder's fresh ephemeral, re and rs the initiator's ephemeral and
// static keys from the first message.
func (s *symmetricState) writeMessageTwo(e *PrivateKey, re, rs PublicKey, psk *PresharedKey, payload []byte) (messageTwo, error) {
	st := *s
	var m messageTwo
	m.ephemeral = e.PublicKey()
	st.mixEphemeral(m.ephemeral)

	ee, err := e.sharedSecret(re)
	if err != nil {
		return messageTwo{}, err
	}
	st.ck = kdf1(&st.ck, ee[:]) // "ee": the key half is unused
	clear(ee[:])
	se, err := e.sharedSecret(rs)
	if err != nil {
		return messageTwo{}, err
	}
	st.ck = kdf1(&st.ck, se[:]) // "se"
	clear(se[:])

	k := st.mixKeyAndHash(psk)
	m.payload = st.encryptAndHash(nil, &k, payload)
	clear(k[:])
	*s = st
	return m, nil
}

// readMessageTwo runs the initiator's side of the second message. e is
// the ephemeral it sent in the first message, local its static key pair.
// It appends the plaintext payload to dst.
func (s *symmetricState) readMessageTwo(dst []byte, local *Identity, e *PrivateKey, psk *PresharedKey, m *messageTwo) ([]byte, error) {
	st := *s
	st.mixEphemeral(m.ephemeral)
	ee, err := e.sharedSecret(m.ephemeral)
	if err != nil {
		return nil, errors.Join(ErrDecrypt, err)
	}
	st.ck = kdf1(&st.ck, ee[:])
	clear(ee[:])
	se, err := local.private.sharedSecret(m.ephemeral)
	if err != nil {
		return nil, errors.Join(ErrDecrypt, err)
	}
	st.ck = kdf1(&st.ck, se[:])
	clear(se[:])

	k := st.mixKeyAndHash(psk)
	out, err := st.decryptAndHash(dst, &k, m.payload)
	clear(k[:])
	if err != nil {
		return nil, err
	}
	*s = st
	return out, nil
}
