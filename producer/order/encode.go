package order

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/taxi-stream/taxi-stream/codecs"
)

// Spill record encoding (private to one process; never stored beyond a run):
//
//	uvarint  payload length
//	uvarint  file index
//	uvarint  row index
//	uvarint  bitmap of the non-null columns (bit = codecs.Column)
//	then, for each non-null column in Column order:
//	  timestamp, code: zigzag varint
//	  amount:          8 bytes, little-endian IEEE 754 bits (exact, NaN payloads too)
//	  string:          uvarint length + bytes
//
// The Layout is not stored: it is the same for all rows of a file and is kept in memory per
// file index. A typical green row takes about 120 bytes (its JSON about 430).

// appendRecord appends the record of r to dst.
func appendRecord(dst []byte, r *Row) []byte {
	start := len(dst)
	dst = append(dst, 0, 0) // length placeholder: payloads are < 16 KiB, so 2 varint bytes
	dst = binary.AppendUvarint(dst, uint64(r.File))
	dst = binary.AppendUvarint(dst, uint64(r.Row))
	t := &r.Trip
	var valid uint64
	for c := codecs.Column(0); c < codecs.NumColumns; c++ {
		if t.Valid(c) {
			valid |= 1 << c
		}
	}
	dst = binary.AppendUvarint(dst, valid)
	for c := codecs.Column(0); c < codecs.NumColumns; c++ {
		if valid&(1<<c) == 0 {
			continue
		}
		switch c.Type() {
		case codecs.TypeString:
			dst = binary.AppendUvarint(dst, uint64(len(t.StoreAndFwdFlag.V)))
			dst = append(dst, t.StoreAndFwdFlag.V...)
		case codecs.TypeAmount:
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(t.FloatField(c).V))
		default:
			dst = binary.AppendVarint(dst, t.IntField(c).V)
		}
	}
	n := len(dst) - start - 2
	if n >= 1<<14 {
		// Only a huge store_and_fwd_flag can get here: move the payload to fit a longer prefix.
		var hdr [binary.MaxVarintLen64]byte
		h := binary.PutUvarint(hdr[:], uint64(n))
		payload := append([]byte(nil), dst[start+2:]...)
		dst = append(append(dst[:start], hdr[:h]...), payload...)
		return dst
	}
	dst[start] = byte(n) | 0x80
	dst[start+1] = byte(n >> 7)
	return dst
}

var errCorruptRun = errors.New("corrupt spill record")

// decodeRecord decodes one payload (without its length prefix) into r.
func decodeRecord(p []byte, layouts []codecs.Layout, r *Row) error {
	file, n := binary.Uvarint(p)
	if n <= 0 || file >= uint64(len(layouts)) {
		return errCorruptRun
	}
	p = p[n:]
	row, n := binary.Uvarint(p)
	if n <= 0 {
		return errCorruptRun
	}
	p = p[n:]
	valid, n := binary.Uvarint(p)
	if n <= 0 {
		return errCorruptRun
	}
	p = p[n:]
	*r = Row{File: int(file), Row: int64(row), Trip: codecs.Trip{Layout: layouts[file]}}
	t := &r.Trip
	for c := codecs.Column(0); c < codecs.NumColumns; c++ {
		if valid&(1<<c) == 0 {
			continue
		}
		switch c.Type() {
		case codecs.TypeString:
			l, n := binary.Uvarint(p)
			if n <= 0 || uint64(len(p)-n) < l {
				return errCorruptRun
			}
			t.StoreAndFwdFlag = codecs.String(internString(p[n : n+int(l)]))
			p = p[n+int(l):]
		case codecs.TypeAmount:
			if len(p) < 8 {
				return errCorruptRun
			}
			*t.FloatField(c) = codecs.Float(math.Float64frombits(binary.LittleEndian.Uint64(p)))
			p = p[8:]
		default:
			v, n := binary.Varint(p)
			if n <= 0 {
				return errCorruptRun
			}
			*t.IntField(c) = codecs.Int(v)
			p = p[n:]
		}
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errCorruptRun, len(p))
	}
	return nil
}

func internString(b []byte) string {
	switch string(b) {
	case "N":
		return "N"
	case "Y":
		return "Y"
	}
	return string(b)
}
