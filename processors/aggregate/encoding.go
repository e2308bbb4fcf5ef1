package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

// Binary encodings of State (a goka table value) and Partial (a repartition
// topic value). Both are canonical: equal values give identical bytes, and
// the decoder accepts only canonical input, so a round trip is exact.
//
//	State:   'S' 1 | flags (bit 0: closed) | [zigzag closedMs]
//	         | uvarint #watermarks, each: zigzag partition (ascending), zigzag ms
//	         | entries | CRC-32C (4 bytes LE) of everything before
//	Partial: 'P' 1 | zigzag partition | flags (bit 0: watermark) | [zigzag ms]
//	         | entries | CRC-32C
//	entries: uvarint #boroughs, each uvarint length + bytes (sorted, all used)
//	         | uvarint #windows, each (ascending by start, end):
//	             zigzag start − previous start, uvarint end − start (> 0),
//	             uvarint #cells (> 0), each (ascending borough):
//	                 uvarint borough index, 7 zigzag sums (Sums field order)
//
// Boroughs are written once, so a cell costs its index and seven small
// varints: about 20 bytes for an hour of one borough's rides.

const encodingVersion = 1

const (
	magicState   = 'S'
	magicPartial = 'P'
)

// ErrCorrupt is wrapped by every UnmarshalBinary error about the bytes.
var ErrCorrupt = errors.New("corrupt aggregate encoding")

// MarshalBinary encodes the state canonically.
func (s *State) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, 64+24*len(s.open)))
}

// AppendBinary appends the MarshalBinary encoding to b.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, magicState, encodingVersion)
	if s.hasClosed {
		b = append(b, flagClosed)
		b = binary.AppendVarint(b, s.closedMs)
	} else {
		b = append(b, 0)
	}
	parts := s.partitions()
	b = binary.AppendUvarint(b, uint64(len(parts)))
	for _, p := range parts {
		b = binary.AppendVarint(b, int64(p))
		b = binary.AppendVarint(b, s.watermarks[p])
	}
	entries := s.Entries()
	revs, kept := s.revisions(entries)
	if kept {
		b[start+2] |= flagKept
	}
	b = appendEntries(b, entries)
	if kept {
		for _, r := range revs {
			b = binary.AppendUvarint(b, uint64(r))
		}
	}
	return binary.LittleEndian.AppendUint32(b, codecs.CRC32C(b[start:])), nil
}

// State flags.
const (
	flagClosed = 1 << 0 // closedMs follows
	// flagKept: some cells are closed windows kept for revisions (allowed
	// lateness); a revision per cell follows the entries.
	flagKept = 1 << 1
)

// UnmarshalBinary replaces s with a state encoded by MarshalBinary. Corrupt
// input returns an error wrapping ErrCorrupt and leaves s unchanged.
func (s *State) UnmarshalBinary(data []byte) error {
	var n State
	r, err := openEncoding(data, magicState, "state")
	if err != nil {
		return err
	}
	flags := r.Byte("flags")
	switch {
	case flags&^(flagClosed|flagKept) != 0, flags == flagKept:
		r.Fail(fmt.Errorf("unknown flags %#x", flags))
	case flags&flagClosed != 0:
		n.closedMs, n.hasClosed = r.Varint("closed watermark"), true
	}
	count := r.count("watermarks", 2)
	prevPart := int64(-1)
	for i := 0; i < count && r.Err == nil; i++ {
		p := r.Varint("partition")
		ms := r.Varint("watermark")
		if r.Err != nil {
			break
		}
		if p < 0 || p > math.MaxInt32 {
			r.Fail(fmt.Errorf("watermark %d: partition %d out of range", i, p))
			break
		}
		if p <= prevPart {
			r.Fail(fmt.Errorf("watermark %d: partition %d not after %d", i, p, prevPart))
			break
		}
		if n.watermarks == nil {
			n.watermarks = make(map[int32]int64, count)
		}
		n.watermarks[int32(p)] = ms
		prevPart = p
	}
	entries := r.entries()
	revs := make([]int64, len(entries))
	if flags&flagKept != 0 {
		for i := range revs {
			v := r.Uvarint("revision")
			if r.Err == nil && v > math.MaxInt64 {
				r.Fail(fmt.Errorf("cell %d: revision %d out of range", i, v))
			}
			revs[i] = int64(v)
		}
	}
	kept := false
	for i, e := range entries {
		if r.Err != nil {
			break
		}
		if n.closed(e.Window) {
			kept = true
			if flags&flagKept == 0 {
				r.Fail(fmt.Errorf("cell %d: window %v open although closed through %s", i, e.Window, window.FormatWallClock(n.closedMs)))
				break
			}
		} else if revs[i] != 0 {
			r.Fail(fmt.Errorf("cell %d: open window %v with revision %d", i, e.Window, revs[i]))
			break
		}
		if n.open == nil {
			n.open = make(map[cell]*slot, len(entries))
		}
		n.open[cell{e.Window, e.Borough}] = &slot{sums: e.Sums, revision: revs[i]}
	}
	if r.Err == nil && flags&flagKept != 0 && !kept {
		r.Fail(errors.New("flag of kept windows without any"))
	}
	if err := r.finish("state"); err != nil {
		return err
	}
	*s = n
	return nil
}

// MarshalBinary encodes the partial canonically: entries sorted, cells of
// the same (window, borough) merged.
func (p Partial) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, 32+24*len(p.Entries)))
}

// AppendBinary appends the MarshalBinary encoding to b.
func (p Partial) AppendBinary(b []byte) ([]byte, error) {
	start := len(b)
	b = append(b, magicPartial, encodingVersion)
	b = binary.AppendVarint(b, int64(p.Partition))
	if p.HasWatermark {
		b = append(b, 1)
		b = binary.AppendVarint(b, p.Watermark)
	} else {
		b = append(b, 0)
	}
	b = appendEntries(b, canonical(p.Entries))
	return binary.LittleEndian.AppendUint32(b, codecs.CRC32C(b[start:])), nil
}

// UnmarshalBinary replaces p with a partial encoded by MarshalBinary.
// Corrupt input returns an error wrapping ErrCorrupt and leaves p unchanged.
func (p *Partial) UnmarshalBinary(data []byte) error {
	var n Partial
	r, err := openEncoding(data, magicPartial, "partial")
	if err != nil {
		return err
	}
	part := r.Varint("partition")
	if r.Err == nil && (part < math.MinInt32 || part > math.MaxInt32) {
		r.Fail(fmt.Errorf("partition %d out of range", part))
	}
	n.Partition = int32(part)
	switch flags := r.Byte("flags"); flags {
	case 0:
	case 1:
		n.Watermark, n.HasWatermark = r.Varint("watermark"), true
	default:
		r.Fail(fmt.Errorf("unknown flags %#x", flags))
	}
	n.Entries = r.entries()
	if err := r.finish("partial"); err != nil {
		return err
	}
	*p = n
	return nil
}

// canonical returns entries sorted with duplicate cells merged (a copy if
// anything had to change).
func canonical(entries []Entry) []Entry {
	ok := true
	for i := 1; i < len(entries) && ok; i++ {
		ok = compareEntries(entries[i-1], entries[i]) < 0
	}
	if ok {
		return entries
	}
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, compareEntries)
	out := sorted[:0]
	for _, e := range sorted {
		if n := len(out); n > 0 && compareEntries(out[n-1], e) == 0 {
			out[n-1].Sums.Merge(e.Sums)
			continue
		}
		out = append(out, e)
	}
	return out
}

// appendEntries encodes canonical entries (sorted, no duplicate cells).
func appendEntries(b []byte, entries []Entry) []byte {
	boroughs := make([]string, 0, 8)
	for _, e := range entries {
		boroughs = append(boroughs, e.Borough)
	}
	slices.Sort(boroughs)
	boroughs = slices.Compact(boroughs)
	b = binary.AppendUvarint(b, uint64(len(boroughs)))
	for _, name := range boroughs {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
	}
	windows := 0
	for i, e := range entries {
		if i == 0 || e.Window != entries[i-1].Window {
			windows++
		}
	}
	b = binary.AppendUvarint(b, uint64(windows))
	prevStart := int64(0)
	for i := 0; i < len(entries); {
		w := entries[i].Window
		j := i + 1
		for j < len(entries) && entries[j].Window == w {
			j++
		}
		b = binary.AppendVarint(b, w.StartMs-prevStart)
		b = binary.AppendUvarint(b, uint64(w.EndMs-w.StartMs))
		b = binary.AppendUvarint(b, uint64(j-i))
		for _, e := range entries[i:j] {
			idx, _ := slices.BinarySearch(boroughs, e.Borough)
			b = binary.AppendUvarint(b, uint64(idx))
			s := e.Sums
			for _, v := range [...]int64{s.Count, s.PassengerSum, s.PassengerCount, s.DistanceHundredths, s.TipCents, s.FareCents, s.TotalCents} {
				b = binary.AppendVarint(b, v)
			}
		}
		prevStart, i = w.StartMs, j
	}
	return b
}

// decoder is codecs.BinaryReader plus the input size for messages.
type decoder struct {
	codecs.BinaryReader
	size int // of the whole input, for messages
}

func openEncoding(data []byte, magic byte, what string) (*decoder, error) {
	if len(data) < 2+4 {
		return nil, fmt.Errorf("%w: %s of %d bytes: too short", ErrCorrupt, what, len(data))
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := codecs.CRC32C(body); got != sum {
		return nil, fmt.Errorf("%w: %s of %d bytes: checksum %08x, want %08x", ErrCorrupt, what, len(data), got, sum)
	}
	if body[0] != magic || body[1] != encodingVersion {
		return nil, fmt.Errorf("%w: %s of %d bytes: header %q %d, want %q %d", ErrCorrupt, what, len(data), body[0], body[1], magic, encodingVersion)
	}
	return &decoder{BinaryReader: codecs.BinaryReader{Buf: body[2:]}, size: len(data)}, nil
}

func (r *decoder) finish(what string) error {
	if r.Err == nil && len(r.Buf) != 0 {
		r.Err = fmt.Errorf("%d trailing bytes", len(r.Buf))
	}
	if r.Err != nil {
		return fmt.Errorf("%w: %s of %d bytes: %w", ErrCorrupt, what, r.size, r.Err)
	}
	return nil
}

// count reads a length whose items take at least minBytes each, so a
// corrupt length cannot make the decoder allocate more than the input.
func (r *decoder) count(what string, minBytes int) int {
	n := r.Uvarint(what)
	if r.Err == nil && n > uint64(len(r.Buf)/minBytes) {
		r.Fail(fmt.Errorf("%d %s do not fit in %d bytes", n, what, len(r.Buf)))
		return 0
	}
	return int(n)
}

// entries reads the entries block and checks that it is canonical.
func (r *decoder) entries() []Entry {
	nb := r.count("boroughs", 1)
	boroughs := make([]string, 0, nb)
	for i := 0; i < nb && r.Err == nil; i++ {
		l := r.Uvarint("borough length")
		if r.Err == nil && l > uint64(len(r.Buf)) {
			r.Fail(fmt.Errorf("borough %d: length %d exceeds the %d bytes left", i, l, len(r.Buf)))
		}
		if r.Err != nil {
			break
		}
		name := string(r.Buf[:l])
		r.Buf = r.Buf[l:]
		if i > 0 && strings.Compare(boroughs[i-1], name) >= 0 {
			r.Fail(fmt.Errorf("borough %d %q not after %q", i, name, boroughs[i-1]))
		}
		boroughs = append(boroughs, name)
	}
	used := make([]bool, len(boroughs))
	nw := r.count("windows", 3)
	var out []Entry
	prevStart := int64(0)
	var prev window.Window
	for i := 0; i < nw && r.Err == nil; i++ {
		start := prevStart + r.Varint("window start")
		size := r.Uvarint("window size")
		nc := r.count("cells", 8)
		if r.Err != nil {
			break
		}
		if size == 0 || size > math.MaxInt64 || start > math.MaxInt64-int64(size) {
			r.Fail(fmt.Errorf("window %d: size %d at start %d out of range", i, size, start))
			break
		}
		w := window.Window{StartMs: start, EndMs: start + int64(size)}
		if i > 0 && (w.StartMs < prev.StartMs || w.StartMs == prev.StartMs && w.EndMs <= prev.EndMs) {
			r.Fail(fmt.Errorf("window %d %v not after %v", i, w, prev))
			break
		}
		if nc == 0 {
			r.Fail(fmt.Errorf("window %d %v without cells", i, w))
			break
		}
		prevIdx := -1
		for j := 0; j < nc && r.Err == nil; j++ {
			idx := r.Uvarint("borough index")
			var v [7]int64
			for k := range v {
				v[k] = r.Varint("sum")
			}
			if r.Err != nil {
				break
			}
			if idx >= uint64(len(boroughs)) || int(idx) <= prevIdx {
				r.Fail(fmt.Errorf("window %v cell %d: borough index %d invalid or not ascending", w, j, idx))
				break
			}
			s := Sums{v[0], v[1], v[2], v[3], v[4], v[5], v[6]}
			if s.Count < 0 || s.PassengerCount < 0 || s.PassengerCount > s.Count {
				r.Fail(fmt.Errorf("window %v borough %q: impossible counts %+v", w, boroughs[idx], s))
				break
			}
			prevIdx = int(idx)
			used[idx] = true
			out = append(out, Entry{Window: w, Borough: boroughs[idx], Sums: s})
		}
		prevStart, prev = start, w
	}
	if r.Err == nil {
		for i, u := range used {
			if !u {
				r.Fail(fmt.Errorf("borough %q listed but not used", boroughs[i]))
				break
			}
		}
	}
	return out
}
