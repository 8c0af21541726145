package packet

import "net/netip"

// refParse is the slow reference that FuzzParse holds Parse to. It reads
// every field through a bounds-checked accessor, collects the IPv6
// extension headers into a list before looking at them, and decides each
// error in the order the package documents, one rule at a time.
func refParse(buf []byte, embedded bool) (Packet, error) {
	r := refReader(buf)
	first, ok := r.u8(0)
	if !ok {
		return Packet{}, ErrShort
	}
	var p Packet
	var err error
	switch first >> 4 {
	case 4:
		p, err = refIPv4(r, embedded)
	case 6:
		p, err = refIPv6(r, embedded)
	default:
		err = ErrVersion
	}
	if err != nil {
		return Packet{}, err
	}
	return p, nil
}

// refReader reads big-endian fields; ok is false past the end.
type refReader []byte

func (r refReader) u8(i int) (byte, bool) {
	if i < 0 || i >= len(r) {
		return 0, false
	}
	return r[i], true
}

func (r refReader) u16(i int) (uint16, bool) {
	hi, ok1 := r.u8(i)
	lo, ok2 := r.u8(i + 1)
	return uint16(hi)<<8 | uint16(lo), ok1 && ok2
}

func (r refReader) u32(i int) (uint32, bool) {
	hi, ok1 := r.u16(i)
	lo, ok2 := r.u16(i + 2)
	return uint32(hi)<<16 | uint32(lo), ok1 && ok2
}

func refIPv4(r refReader, embedded bool) (Packet, error) {
	if len(r) < 20 {
		return Packet{}, ErrShort
	}
	ihl := int(r[0]%16) * 4
	if ihl < 20 {
		return Packet{}, ErrIPHeaderLen
	}
	total16, _ := r.u16(2)
	total := int(total16)
	if total > len(r) && !embedded {
		return Packet{}, ErrTruncated
	}
	if total < ihl {
		return Packet{}, ErrIPHeaderLen
	}
	if min(total, len(r)) < ihl {
		return Packet{}, ErrTruncated
	}
	flagsAndOffset, _ := r.u16(6)
	moreFragments := flagsAndOffset/0x2000%2 == 1
	offsetBytes := int(flagsAndOffset%0x2000) * 8
	if offsetBytes+(total-ihl) > 65535 {
		return Packet{}, ErrFragment
	}
	id, _ := r.u16(4)
	p := Packet{
		Version:       4,
		Proto:         r[9],
		Src:           netip.AddrFrom4([4]byte{r[12], r[13], r[14], r[15]}),
		Dst:           netip.AddrFrom4([4]byte{r[16], r[17], r[18], r[19]}),
		HeaderLen:     ihl,
		TotalLen:      total,
		FragOff:       uint16(offsetBytes),
		MoreFragments: moreFragments,
		FragID:        uint32(id),
	}
	if offsetBytes > 0 {
		return p, nil
	}
	return refTransport(p, r[ihl:min(total, len(r))], embedded)
}

type refExt struct {
	kind   byte
	start  int
	length int
}

func refIPv6(r refReader, embedded bool) (Packet, error) {
	if len(r) < 40 {
		return Packet{}, ErrShort
	}
	payload, _ := r.u16(4)
	total := 40 + int(payload)
	if total > len(r) && !embedded {
		return Packet{}, ErrTruncated
	}
	data := r[:min(total, len(r))]

	// Collect the chain first.
	var chain []refExt
	next := r[6]
	at := 40
	for {
		isExt := next == 0 || next == 43 || next == 44 || next == 60
		if !isExt {
			break
		}
		if len(chain) == MaxExtHeaders {
			return Packet{}, ErrTooManyExtHeaders
		}
		if at+8 > len(data) {
			return Packet{}, ErrExtHeader
		}
		length := 8
		if next != 44 {
			length = int(data[at+1])*8 + 8
		}
		if at+length > len(data) {
			return Packet{}, ErrExtHeader
		}
		for _, e := range chain {
			if next == 44 && e.kind == 44 {
				return Packet{}, ErrExtHeader // one fragment header at most
			}
		}
		chain = append(chain, refExt{kind: next, start: at, length: length})
		nonFirstFragment := false
		if next == 44 {
			off, _ := refReader(data).u16(at + 2)
			nonFirstFragment = off/8 != 0
		}
		next = data[at]
		at += length
		if nonFirstFragment {
			break
		}
	}

	p := Packet{
		Version:   6,
		Proto:     next,
		Src:       netip.AddrFrom16([16]byte(r[8:24])),
		Dst:       netip.AddrFrom16([16]byte(r[24:40])),
		HeaderLen: at,
		TotalLen:  total,
	}
	for _, e := range chain {
		if e.kind != 44 {
			continue
		}
		word, _ := refReader(data).u16(e.start + 2)
		id, _ := refReader(data).u32(e.start + 4)
		p.FragOff = word / 8 * 8
		p.MoreFragments = word%2 == 1
		p.FragID = id
		if int(p.FragOff)+total-(e.start+8) > 65535 {
			return Packet{}, ErrFragment
		}
	}
	if p.FragOff > 0 {
		return p, nil
	}
	return refTransport(p, data[at:], embedded)
}

func refTransport(p Packet, l4 refReader, embedded bool) (Packet, error) {
	isICMP := (p.Version == 4 && p.Proto == 1) || (p.Version == 6 && p.Proto == 58)
	if isICMP {
		if len(l4) < 8 {
			return Packet{}, ErrTransportShort
		}
		p.HasICMP = true
		p.ICMPType = l4[0]
		p.ICMPCode = l4[1]
		echo := map[bool][]byte{false: {0, 8}, true: {128, 129}}[p.Version == 6]
		for _, t := range echo {
			if p.ICMPType == t {
				p.ICMPID, _ = l4.u16(4)
			}
		}
		return p, nil
	}
	minLen := map[byte]int{6: 20, 17: 8, 136: 8, 132: 12}
	need, hasPorts := minLen[p.Proto]
	if !hasPorts {
		return p, nil
	}
	if embedded {
		need = 8
	}
	if len(l4) < need {
		return Packet{}, ErrTransportShort
	}
	p.HasPorts = true
	p.SrcPort, _ = l4.u16(0)
	p.DstPort, _ = l4.u16(2)
	if p.Proto == 6 && !embedded {
		dataOffset := int(l4[12]/16) * 4
		if dataOffset < 20 || dataOffset > len(l4) {
			return Packet{}, ErrTCPHeaderLen
		}
		p.TCPHeaderLen = uint8(dataOffset)
		p.TCPFlags = l4[13]
	}
	return p, nil
}
