package crypto

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// The public Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s vector (cacophony
// format). It checks the generic core in noise.go, the KDF and the
// transport keypair byte for byte, through the same functions that
// CreateInitiation, ConsumeInitiation, CreateResponse, ConsumeResponse and
// DeriveKeys call; only the prologue and payloads differ from WireGuard's.

const vectorFile = "noise-ikpsk2-vector.json"

// hexBytes decodes a JSON hex string.
type hexBytes []byte

func (b *hexBytes) UnmarshalText(text []byte) error {
	v, err := hex.DecodeString(string(text))
	*b = v
	return err
}

type noiseVector struct {
	ProtocolName     string     `json:"protocol_name"`
	InitPrologue     hexBytes   `json:"init_prologue"`
	InitPSKs         []hexBytes `json:"init_psks"`
	InitStatic       hexBytes   `json:"init_static"`
	InitEphemeral    hexBytes   `json:"init_ephemeral"`
	InitRemoteStatic hexBytes   `json:"init_remote_static"`
	RespPrologue     hexBytes   `json:"resp_prologue"`
	RespPSKs         []hexBytes `json:"resp_psks"`
	RespStatic       hexBytes   `json:"resp_static"`
	RespEphemeral    hexBytes   `json:"resp_ephemeral"`
	HandshakeHash    hexBytes   `json:"handshake_hash"`
	Messages         []struct {
		Payload    hexBytes `json:"payload"`
		Ciphertext hexBytes `json:"ciphertext"`
	} `json:"messages"`
}

// findVector walks up from the package directory to the first ancestor
// with a shared/testdata sibling holding the vector.
func findVector(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "testdata", vectorFile)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skipf("known-answer vector shared/testdata/%s not found in any parent of the package directory", vectorFile)
		}
		dir = parent
	}
}

func key32(t *testing.T, name string, b []byte) [KeySize]byte {
	t.Helper()
	if len(b) != KeySize {
		t.Fatalf("%s: got %d bytes, want %d", name, len(b), KeySize)
	}
	return [KeySize]byte(b)
}

func TestNoiseVector(t *testing.T) {
	raw, err := os.ReadFile(findVector(t))
	if err != nil {
		t.Fatal(err)
	}
	var v noiseVector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("parse vector: %v", err)
	}
	if v.ProtocolName != noiseConstruction {
		t.Fatalf("protocol: got %q, want %q", v.ProtocolName, noiseConstruction)
	}
	if len(v.Messages) < 2 || len(v.InitPSKs) != 1 || len(v.RespPSKs) != 1 {
		t.Fatalf("vector has %d messages, %d/%d psks; want >= 2 and 1/1", len(v.Messages), len(v.InitPSKs), len(v.RespPSKs))
	}

	ini := NewIdentity(PrivateKey(key32(t, "init_static", v.InitStatic)))
	resp := NewIdentity(PrivateKey(key32(t, "resp_static", v.RespStatic)))
	iEph := PrivateKey(key32(t, "init_ephemeral", v.InitEphemeral))
	rEph := PrivateKey(key32(t, "resp_ephemeral", v.RespEphemeral))
	iPSK := PresharedKey(key32(t, "init_psks[0]", v.InitPSKs[0]))
	rPSK := PresharedKey(key32(t, "resp_psks[0]", v.RespPSKs[0]))
	if rs := PublicKey(key32(t, "init_remote_static", v.InitRemoteStatic)); !rs.Equal(resp.public) {
		t.Fatalf("init_remote_static: got %v, want responder's public key %v", rs, resp.public)
	}

	// -> e, es, s, ss (initiator)
	iState := newSymmetricState(v.InitPrologue, resp.public)
	iSS, err := ini.private.sharedSecret(resp.public)
	if err != nil {
		t.Fatal(err)
	}
	m1, err := iState.writeMessageOne(ini, &iEph, resp.public, &iSS, v.Messages[0].Payload)
	if err != nil {
		t.Fatalf("writeMessageOne: %v", err)
	}
	wire1 := concat(m1.ephemeral[:], m1.static[:], m1.payload)
	if !bytes.Equal(wire1, v.Messages[0].Ciphertext) {
		t.Fatalf("message 0:\n got %x\nwant %x", wire1, v.Messages[0].Ciphertext)
	}

	// The responder parses the bytes of the vector, not our struct.
	c1 := v.Messages[0].Ciphertext
	if len(c1) < KeySize+EncryptedStatic {
		t.Fatalf("message 0 is %d bytes", len(c1))
	}
	in1 := messageOne{ephemeral: PublicKey(c1[:KeySize]), payload: c1[KeySize+EncryptedStatic:]}
	copy(in1.static[:], c1[KeySize:])
	rState := newSymmetricState(v.RespPrologue, resp.public)
	rs, err := rState.readMessageOneStatic(resp, &in1)
	if err != nil {
		t.Fatalf("readMessageOneStatic: %v", err)
	}
	if !rs.Equal(ini.public) {
		t.Fatalf("decrypted static: got %v, want %v", rs, ini.public)
	}
	rSS, err := resp.private.sharedSecret(rs)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := rState.readMessageOnePayload(nil, &rSS, &in1)
	if err != nil {
		t.Fatalf("readMessageOnePayload: %v", err)
	}
	if !bytes.Equal(p1, v.Messages[0].Payload) {
		t.Fatalf("payload 0: got %x, want %x", p1, v.Messages[0].Payload)
	}

	// <- e, ee, se, psk (responder)
	m2, err := rState.writeMessageTwo(&rEph, in1.ephemeral, rs, &rPSK, v.Messages[1].Payload)
	if err != nil {
		t.Fatalf("writeMessageTwo: %v", err)
	}
	wire2 := concat(m2.ephemeral[:], m2.payload)
	if !bytes.Equal(wire2, v.Messages[1].Ciphertext) {
		t.Fatalf("message 1:\n got %x\nwant %x", wire2, v.Messages[1].Ciphertext)
	}
	c2 := v.Messages[1].Ciphertext
	in2 := messageTwo{ephemeral: PublicKey(c2[:KeySize]), payload: c2[KeySize:]}
	p2, err := iState.readMessageTwo(nil, ini, &iEph, &iPSK, &in2)
	if err != nil {
		t.Fatalf("readMessageTwo: %v", err)
	}
	if !bytes.Equal(p2, v.Messages[1].Payload) {
		t.Fatalf("payload 1: got %x, want %x", p2, v.Messages[1].Payload)
	}

	for _, side := range []struct {
		name string
		h    [KeySize]byte
	}{{"initiator", iState.h}, {"responder", rState.h}} {
		if !bytes.Equal(side.h[:], v.HandshakeHash) {
			t.Errorf("%s handshake hash: got %x, want %x", side.name, side.h, []byte(v.HandshakeHash))
		}
	}

	// Transport: messages alternate initiator -> responder and back, each
	// direction counting from zero.
	iKP, rKP := deriveKeypair(&iState, true), deriveKeypair(&rState, false)
	for i, m := range v.Messages[2:] {
		send, recv := iKP, rKP
		if i%2 == 1 {
			send, recv = rKP, iKP
		}
		ctr, ok := send.NextSendCounter()
		if want := uint64(i / 2); !ok || ctr != want {
			t.Fatalf("message %d: counter got %d, %v, want %d, true", i+2, ctr, ok, want)
		}
		ct := send.Seal(nil, ctr, m.Payload)
		if !bytes.Equal(ct, m.Ciphertext) {
			t.Errorf("message %d:\n got %x\nwant %x", i+2, ct, []byte(m.Ciphertext))
		}
		pt, err := recv.Open(nil, ctr, m.Ciphertext)
		if err != nil || !bytes.Equal(pt, m.Payload) || !recv.AcceptCounter(ctr) {
			t.Errorf("message %d: open got %x, %v, want %x", i+2, pt, err, []byte(m.Payload))
		}
	}
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
