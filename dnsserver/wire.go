package dnsserver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// Header bits (RFC 1035 4.1.1) that the reply copies from the query.
const (
	flagRD = 0x01 // in byte 2
	flagCD = 0x10 // in byte 3 (RFC 4035)
)

// maxKeyName is the longest name a wireQuery holds, in presentation form:
// the 255 octets of the longest name on the wire (RFC 1035 2.3.4) less the
// root label.
const maxKeyName = 254

// wireQuery is a query read by parse, without miekg/dns, for the reply
// cache. Its key starts with the question's name, lower case, in
// presentation form; the cache key follows it (see cacheKey).
type wireQuery struct {
	key     [maxKeyName + cacheKeySuffix]byte
	nameLen int    // of the name at the start of key
	qtype   uint16 // the question's type; its class is IN
	qend    int    // the offset of the end of the question
	edns    bool   // the query has an EDNS0 OPT record
	do      bool   // its DO bit (RFC 3225)
	udpSize uint16 // its UDP payload size
}

// parse reads raw, a query of one question of class IN and an optional
// EDNS0 OPT record, into q. It reports false for any other message, and
// for one it might not read as miekg/dns does: compression pointers, a
// label byte other than a letter, a digit, '-' or '_', an OPT record with
// options other than cookies and padding, trailing bytes. Those are left
// to miekg/dns, the reference. It reads only within raw and never panics.
func (q *wireQuery) parse(raw []byte) bool {
	if len(raw) < headerLen || raw[2]&0xF8 != 0 { // QR, or an opcode other than QUERY
		return false
	}
	if binary.BigEndian.Uint16(raw[4:]) != 1 || binary.BigEndian.Uint16(raw[6:]) != 0 ||
		binary.BigEndian.Uint16(raw[8:]) != 0 || binary.BigEndian.Uint16(raw[10:]) > 1 {
		return false
	}
	off, n := headerLen, 0
	for {
		if off >= len(raw) {
			return false
		}
		l := int(raw[off])
		off++
		if l == 0 {
			break
		}
		// l > 63 is a pointer or a reserved label type.
		if l > 63 || off+l > len(raw) || n+l+1 > maxKeyName {
			return false
		}
		for _, b := range raw[off : off+l] {
			switch {
			case 'A' <= b && b <= 'Z':
				b += 'a' - 'A'
			case 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '_':
			default:
				return false
			}
			q.key[n] = b
			n++
		}
		q.key[n] = '.'
		n++
		off += l
	}
	if n == 0 || off+4 > len(raw) || binary.BigEndian.Uint16(raw[off+2:]) != dns.ClassINET {
		return false
	}
	q.nameLen, q.qtype = n, binary.BigEndian.Uint16(raw[off:])
	off += 4
	q.qend = off
	q.edns = binary.BigEndian.Uint16(raw[10:]) == 1
	if !q.edns {
		return off == len(raw)
	}
	// The OPT record: root owner, type, UDP size, extended rcode, version,
	// flags, options (RFC 6891 6.1.2).
	if off+11 > len(raw) || raw[off] != 0 || binary.BigEndian.Uint16(raw[off+1:]) != dns.TypeOPT {
		return false
	}
	q.udpSize = binary.BigEndian.Uint16(raw[off+3:])
	q.do = raw[off+7]&0x80 != 0
	rdlen := int(binary.BigEndian.Uint16(raw[off+9:]))
	off += 11
	return off+rdlen == len(raw) && plainOptions(raw[off:])
}

// plainOptions reports whether opts holds only whole cookie and padding
// options: ones miekg/dns reads whatever their content, and that do not
// change the reply.
func plainOptions(opts []byte) bool {
	for len(opts) > 0 {
		if len(opts) < 4 {
			return false
		}
		code, l := binary.BigEndian.Uint16(opts), int(binary.BigEndian.Uint16(opts[2:]))
		if code != dns.EDNS0COOKIE && code != dns.EDNS0PADDING || 4+l > len(opts) {
			return false
		}
		opts = opts[4+l:]
	}
	return true
}

// name returns the question's name, lower case, in presentation form.
func (q *wireQuery) name() []byte { return q.key[:q.nameLen] }
