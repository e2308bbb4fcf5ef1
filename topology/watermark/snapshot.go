package watermark

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/taxi-stream/taxi-stream/codecs"
)

// Snapshot layout (version 1), all integers varints:
//
//	byte    version (1)
//	byte    flags: bit 0 has watermark, bit 1 has max, bits 2-3 mode
//	zigzag  watermark                  (if bit 0)
//	zigzag  max event time             (if bit 1)
//	uvarint n, ring length             (always 0 outside data mode)
//	uvarint unit u >= 1                (if n > 0; gcd of the values)
//	zigzag  ring[oldest] / u, then n−1 zigzag deltas / u in arrival order
//	4 bytes CRC-32C (Castagnoli) of everything before, little endian
//
// The TLC timestamps are whole seconds, so u is 1000 and a delta within an
// hour of shuffled rides fits in two bytes: about 290 bytes for
// N = 128 and 540 for N = 256.
// The sorted copy is rebuilt on load. The config (delay, q, N) is not stored:
// a tracker restored with a smaller N keeps the newest N values.
const snapshotVersion = 1

const (
	flagWM   = 1 << 0
	flagMax  = 1 << 1
	modeBits = 2
	modeMask = 3 << modeBits
)

// MarshalBinary encodes the whole state: mode, watermark, max event time and
// the window of event times. The encoding is deterministic.
func (t *Tracker) MarshalBinary() ([]byte, error) {
	return t.AppendBinary(make([]byte, 0, 16+3*len(t.ring)))
}

// AppendBinary appends the MarshalBinary encoding to b.
func (t *Tracker) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	flags := byte(t.mode) << modeBits
	if t.hasWM {
		flags |= flagWM
	}
	if t.hasMax {
		flags |= flagMax
	}
	b = append(b, snapshotVersion, flags)
	if t.hasWM {
		b = binary.AppendVarint(b, t.wm)
	}
	if t.hasMax {
		b = binary.AppendVarint(b, t.max)
	}
	b = binary.AppendUvarint(b, uint64(len(t.ring)))
	if len(t.ring) > 0 {
		var unit uint64
		for _, v := range t.ring {
			unit = gcd(unit, absU(v))
		}
		if unit == 0 || unit > math.MaxInt64 { // all zero, or only 0 and MinInt64
			unit = 1
		}
		b = binary.AppendUvarint(b, unit)
		prev := int64(0)
		for i := range t.ring {
			v := t.ring[(t.head+i)%len(t.ring)] / int64(unit)
			b = binary.AppendVarint(b, v-prev) // may wrap for unit 1; the decoder wraps back
			prev = v
		}
	}
	return binary.LittleEndian.AppendUint32(b, codecs.CRC32C(b[start:])), nil
}

// UnmarshalBinary replaces the state of t (created by New) with a snapshot
// from MarshalBinary. It keeps t's config. Corrupt input returns an error
// wrapping ErrCorruptSnapshot and leaves t unchanged.
func (t *Tracker) UnmarshalBinary(data []byte) error {
	if t.cfg.Window == 0 {
		return errors.New("watermark: UnmarshalBinary on a Tracker not created by New")
	}
	s, err := decodeSnapshot(data)
	if err != nil {
		return fmt.Errorf("%w (%d bytes): %w", ErrCorruptSnapshot, len(data), err)
	}
	n := t.cfg.Window
	ring := s.ring
	if len(ring) > n {
		ring = ring[len(ring)-n:]
	}
	t.mode, t.wm, t.hasWM, t.max, t.hasMax = s.mode, s.wm, s.hasWM, s.max, s.hasMax
	t.head = 0
	if t.mode != ModeData {
		t.ring, t.sorted = nil, nil
		return nil
	}
	t.ring = append(make([]int64, 0, n), ring...)
	t.sorted = append(make([]int64, 0, n), ring...)
	slices.Sort(t.sorted)
	return nil
}

type snapshot struct {
	mode          Mode
	wm, max       int64
	hasWM, hasMax bool
	ring          []int64 // oldest first
}

func decodeSnapshot(data []byte) (snapshot, error) {
	var s snapshot
	if len(data) < 2+4 {
		return s, errors.New("too short")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := codecs.CRC32C(body); got != sum {
		return s, fmt.Errorf("checksum %08x, want %08x", got, sum)
	}
	if body[0] != snapshotVersion {
		return s, fmt.Errorf("version %d, want %d", body[0], snapshotVersion)
	}
	flags := body[1]
	if flags&^(flagWM|flagMax|modeMask) != 0 {
		return s, fmt.Errorf("unknown flags %#x", flags)
	}
	s.mode = Mode(flags&modeMask) >> modeBits
	s.hasWM, s.hasMax = flags&flagWM != 0, flags&flagMax != 0
	if s.mode > ModeFinal {
		return s, fmt.Errorf("unknown mode %d", s.mode)
	}
	r := codecs.BinaryReader{Buf: body[2:]}
	if s.hasWM {
		s.wm = r.Varint("watermark")
	}
	if s.hasMax {
		s.max = r.Varint("max")
	}
	n := r.Uvarint("ring length")
	if r.Err == nil && n > uint64(len(r.Buf)) { // every value takes >= 1 byte
		return s, fmt.Errorf("ring length %d exceeds the %d bytes left", n, len(r.Buf))
	}
	if n > 0 {
		unit := r.Uvarint("unit")
		if r.Err == nil && (unit == 0 || unit > math.MaxInt64) {
			return s, fmt.Errorf("unit %d out of range", unit)
		}
		s.ring = make([]int64, 0, n)
		var prev int64
		for i := uint64(0); i < n && r.Err == nil; i++ {
			v := prev + r.Varint("ring value") // wraps like the encoder
			if u := int64(unit); u > 1 && (v > math.MaxInt64/u || v < math.MinInt64/u) {
				return s, fmt.Errorf("ring value %d: %d×%d overflows int64", i, v, unit)
			}
			s.ring = append(s.ring, v*int64(unit))
			prev = v
		}
	}
	switch {
	case r.Err != nil:
		return s, r.Err
	case len(r.Buf) != 0:
		return s, fmt.Errorf("%d trailing bytes", len(r.Buf))
	case s.mode != ModeData && len(s.ring) > 0:
		return s, fmt.Errorf("mode %v with %d ring values", s.mode, len(s.ring))
	case s.mode != ModeData && !s.hasWM:
		return s, fmt.Errorf("mode %v without a watermark", s.mode)
	case s.mode == ModeFinal && s.wm != Closed:
		return s, fmt.Errorf("final mode with watermark %d", s.wm)
	case !s.hasMax && len(s.ring) > 0:
		return s, errors.New("ring values without a max")
	}
	for i, v := range s.ring {
		if v > s.max {
			return s, fmt.Errorf("ring value %d (%d) above max %d", i, v, s.max)
		}
	}
	return s, nil
}

func absU(v int64) uint64 {
	if v < 0 {
		return uint64(-(v + 1)) + 1 // correct for math.MinInt64 too
	}
	return uint64(v)
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
