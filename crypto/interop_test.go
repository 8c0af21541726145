package crypto

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// The second oracle: wireguard-go itself, in process. The Noise vector
// cannot check what is WireGuard-specific (the identifier, the labels, the
// timestamp, the MACs and cookies), so these tests run full handshakes and
// transport packets against a real wireguard-go device in both roles.
//
// Messages are framed by hand here, as the whitepaper lays them out,
// because encap sits above this package.

const (
	wgInitiation = 1
	wgResponse   = 2
	wgTransport  = 4
)

var (
	ourAddr = netip.MustParseAddr("10.9.0.1")
	wgAddr  = netip.MustParseAddr("10.9.0.2")
)

// wgPeer is a wireguard-go device whose only peer is us, reachable over an
// in-memory bind pair.
type wgPeer struct {
	t    *testing.T
	tun  *tuntest.ChannelTUN
	send func([]byte)
	recv chan []byte
	pub  PublicKey
}

func startWireGuardGo(t *testing.T, us PublicKey) *wgPeer {
	priv := testKey("wireguard-go")
	tun := tuntest.NewChannelTUN()
	binds := bindtest.NewChannelBinds()
	dev := device.NewDevice(tun.TUN(), binds[0], device.NewLogger(device.LogLevelError, "wireguard-go: "))
	t.Cleanup(dev.Close)
	// Endpoint 1 is the target of binds[0]'s sends: our side, binds[1].
	cfg := fmt.Sprintf("private_key=%s\npublic_key=%s\nallowed_ip=%s/32\nendpoint=127.0.0.1:1\n",
		hex.EncodeToString(priv[:]), hex.EncodeToString(us[:]), ourAddr)
	if err := dev.IpcSet(cfg); err != nil {
		t.Fatalf("configure wireguard-go: %v", err)
	}
	if err := dev.Up(); err != nil {
		t.Fatalf("wireguard-go up: %v", err)
	}

	fns, _, err := binds[1].Open(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { binds[1].Close() })
	p := &wgPeer{t: t, tun: tun, recv: make(chan []byte, 64), pub: priv.PublicKey()}
	for _, fn := range fns {
		go func(fn conn.ReceiveFunc) {
			bufs, sizes, eps := [][]byte{make([]byte, 65536)}, make([]int, 1), make([]conn.Endpoint, 1)
			for {
				n, err := fn(bufs, sizes, eps)
				if err != nil {
					return
				}
				if n == 1 {
					p.recv <- bytes.Clone(bufs[0][:sizes[0]])
				}
			}
		}(fn)
	}
	// ChannelEndpoint 2 is the target of binds[1]'s sends: the device.
	p.send = func(b []byte) {
		if err := binds[1].Send([][]byte{b}, bindtest.ChannelEndpoint(2)); err != nil {
			t.Fatalf("send to wireguard-go: %v", err)
		}
	}
	return p
}

// await returns the next message of type typ that the device sends.
func (p *wgPeer) await(typ uint32) []byte {
	p.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case b := <-p.recv:
			if len(b) >= 4 && binary.LittleEndian.Uint32(b) == typ {
				return b
			}
		case <-deadline:
			p.t.Fatalf("timed out waiting for message type %d from wireguard-go", typ)
		}
	}
}

// fromTUN returns the next packet wireguard-go delivered to its TUN.
func (p *wgPeer) fromTUN() []byte {
	p.t.Helper()
	select {
	case b := <-p.tun.Inbound:
		return b
	case <-time.After(10 * time.Second):
		p.t.Fatal("timed out waiting for a packet on wireguard-go's TUN")
		return nil
	}
}

// sealTransport frames pkt, padded to 16 bytes, as a transport message.
func sealTransport(kp *Keypair, receiver uint32, pkt []byte) []byte {
	ctr, _ := kp.NextSendCounter()
	padded := make([]byte, (len(pkt)+15)/16*16, (len(pkt)+15)/16*16+TagSize)
	copy(padded, pkt)
	msg := binary.LittleEndian.AppendUint32(nil, wgTransport)
	msg = binary.LittleEndian.AppendUint32(msg, receiver)
	msg = binary.LittleEndian.AppendUint64(msg, ctr)
	return kp.Seal(msg, ctr, padded)
}

// openTransport checks and decrypts a transport message for receiver.
func openTransport(t *testing.T, kp *Keypair, receiver uint32, msg []byte) []byte {
	t.Helper()
	if got := binary.LittleEndian.Uint32(msg[4:]); got != receiver {
		t.Fatalf("transport receiver: got %#x, want %#x", got, receiver)
	}
	ctr := binary.LittleEndian.Uint64(msg[8:])
	pt, err := kp.Open(nil, ctr, msg[16:])
	if err != nil {
		t.Fatalf("open wireguard-go's transport message: %v", err)
	}
	if !kp.AcceptCounter(ctr) {
		t.Fatalf("AcceptCounter(%d): got false, want true", ctr)
	}
	return pt
}

// exchange sends a ping each way over the established session.
func exchange(t *testing.T, p *wgPeer, kp *Keypair, ourIndex, theirIndex uint32) {
	t.Helper()
	ping := tuntest.Ping(wgAddr, ourAddr)
	p.send(sealTransport(kp, theirIndex, ping))
	if got := p.fromTUN(); !bytes.Equal(got, ping) {
		t.Fatalf("wireguard-go decrypted %x, want %x", got, ping)
	}
	pong := tuntest.Ping(ourAddr, wgAddr)
	p.tun.Outbound <- pong
	pt := openTransport(t, kp, ourIndex, p.await(wgTransport))
	if !bytes.HasPrefix(pt, pong) {
		t.Fatalf("decrypted %x, want prefix %x", pt, pong)
	}
}

func TestInteropInitiator(t *testing.T) {
	us := NewIdentity(testKey("us"))
	p := startWireGuardGo(t, us.PublicKey())
	hs, err := us.NewHandshake(p.pub, PresharedKey{})
	if err != nil {
		t.Fatal(err)
	}
	gen, checker := NewCookieGenerator(p.pub), NewCookieChecker(us.PublicKey())

	const ourIndex = 0x11223344
	init, err := hs.CreateInitiation(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	msg := binary.LittleEndian.AppendUint32(nil, wgInitiation)
	msg = binary.LittleEndian.AppendUint32(msg, ourIndex)
	msg = append(msg, init.Ephemeral[:]...)
	msg = append(msg, init.Static[:]...)
	msg = append(msg, init.Timestamp[:]...)
	msg = append(msg, make([]byte, 2*MACSize)...)
	gen.AddMACs(msg, time.Now())
	p.send(msg)

	b := p.await(wgResponse)
	if len(b) != 92 || !checker.CheckMAC1(b) {
		t.Fatalf("response of %d bytes, mac1 valid %v: want 92 bytes with a valid mac1", len(b), checker.CheckMAC1(b))
	}
	if got := binary.LittleEndian.Uint32(b[8:]); got != ourIndex {
		t.Fatalf("response receiver: got %#x, want %#x", got, ourIndex)
	}
	var resp Response
	copy(resp.Ephemeral[:], b[12:44])
	copy(resp.Empty[:], b[44:60])
	if err := hs.ConsumeResponse(&resp); err != nil {
		t.Fatalf("ConsumeResponse of wireguard-go's response: %v", err)
	}
	kp, err := hs.DeriveKeys()
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, p, kp, ourIndex, binary.LittleEndian.Uint32(b[4:]))
}

func TestInteropResponder(t *testing.T) {
	us := NewIdentity(testKey("us"))
	p := startWireGuardGo(t, us.PublicKey())
	hs, err := us.NewHandshake(p.pub, PresharedKey{})
	if err != nil {
		t.Fatal(err)
	}
	gen, checker := NewCookieGenerator(p.pub), NewCookieChecker(us.PublicKey())

	// A packet for us makes wireguard-go initiate.
	first := tuntest.Ping(ourAddr, wgAddr)
	p.tun.Outbound <- first
	b := p.await(wgInitiation)
	if len(b) != 148 || !checker.CheckMAC1(b) {
		t.Fatalf("initiation of %d bytes, mac1 valid %v: want 148 bytes with a valid mac1", len(b), checker.CheckMAC1(b))
	}
	var init Initiation
	copy(init.Ephemeral[:], b[8:40])
	copy(init.Static[:], b[40:88])
	copy(init.Timestamp[:], b[88:116])
	if _, err := us.ConsumeInitiation(&init, time.Now(), lookupOnly(p.pub, hs)); err != nil {
		t.Fatalf("ConsumeInitiation of wireguard-go's initiation: %v", err)
	}
	if _, err := us.ConsumeInitiation(&init, time.Now().Add(time.Second), lookupOnly(p.pub, hs)); err == nil {
		t.Fatal("replay of wireguard-go's initiation: got nil, want ErrStaleTimestamp")
	}
	resp, err := hs.CreateResponse()
	if err != nil {
		t.Fatal(err)
	}
	const ourIndex = 0x55667788
	theirIndex := binary.LittleEndian.Uint32(b[4:])
	msg := binary.LittleEndian.AppendUint32(nil, wgResponse)
	msg = binary.LittleEndian.AppendUint32(msg, ourIndex)
	msg = binary.LittleEndian.AppendUint32(msg, theirIndex)
	msg = append(msg, resp.Ephemeral[:]...)
	msg = append(msg, resp.Empty[:]...)
	msg = append(msg, make([]byte, 2*MACSize)...)
	gen.AddMACs(msg, time.Now())
	kp, err := hs.DeriveKeys()
	if err != nil {
		t.Fatal(err)
	}
	p.send(msg)

	// wireguard-go confirms the session with the packet it queued.
	pt := openTransport(t, kp, ourIndex, p.await(wgTransport))
	if !bytes.HasPrefix(pt, first) {
		t.Fatalf("first packet: got %x, want prefix %x", pt, first)
	}
	exchange(t, p, kp, ourIndex, theirIndex)
}

// TestInteropCookies checks mac1, mac2 and cookie replies against
// wireguard-go's CookieChecker and CookieGenerator, both ways.
func TestInteropCookies(t *testing.T) {
	var respKey device.NoisePublicKey
	pub := testKey("responder").PublicKey()
	copy(respKey[:], pub[:])
	src := []byte{198, 51, 100, 7, 0x12, 0x34}

	// Ours generates, theirs checks.
	var wgChecker device.CookieChecker
	wgChecker.Init(respKey)
	gen := NewCookieGenerator(pub)
	msg := testMessage(9)
	gen.AddMACs(msg, time.Now())
	if !wgChecker.CheckMAC1(msg) {
		t.Fatal("wireguard-go CheckMAC1 of our mac1: got false")
	}
	wgReply, err := wgChecker.CreateReply(msg, 1, src)
	if err != nil {
		t.Fatal(err)
	}
	reply := CookieReply{Nonce: wgReply.Nonce, Cookie: wgReply.Cookie}
	if err := gen.ConsumeReply(&reply, time.Now()); err != nil {
		t.Fatalf("ConsumeReply of wireguard-go's cookie: %v", err)
	}
	gen.AddMACs(msg, time.Now())
	if !wgChecker.CheckMAC2(msg, src) {
		t.Fatal("wireguard-go CheckMAC2 of our mac2: got false")
	}

	// Theirs generates, ours checks.
	var wgGen device.CookieGenerator
	wgGen.Init(respKey)
	checker := NewCookieChecker(pub)
	msg = testMessage(10)
	wgGen.AddMacs(msg)
	if !checker.CheckMAC1(msg) {
		t.Fatal("CheckMAC1 of wireguard-go's mac1: got false")
	}
	ours, err := checker.CreateReply(msg, src, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !wgGen.ConsumeReply(&device.MessageCookieReply{Nonce: ours.Nonce, Cookie: ours.Cookie}) {
		t.Fatal("wireguard-go ConsumeReply of our cookie: got false")
	}
	wgGen.AddMacs(msg)
	if !checker.CheckMAC2(msg, src, time.Now()) {
		t.Fatal("CheckMAC2 of wireguard-go's mac2: got false")
	}
}
