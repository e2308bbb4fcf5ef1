package kafkaio

import "fmt"

// MaxHeaders is the most headers one record can carry in Records.
const MaxHeaders = 4

// recordOverhead bounds the per-record framing of the v2 record format beyond key, value and
// header bytes: length, attributes, timestamp and offset deltas, key and value lengths and
// the header count (varints), plus two length varints per header (counted separately).
const recordOverhead = 24

// Records is an arena of encoded Kafka records. A record is built in place, without allocating:
//
//	rs.Begin()
//	rs.Buf = append(rs.Buf, key...)
//	rs.EndKey()
//	rs.Buf = codecs.AppendTripJSON(rs.Buf, &trip)
//	rs.EndValue()
//	rs.Buf = strconv.AppendInt(rs.Buf, seq, 10)
//	rs.EndHeader(codecs.HeaderSeq)
//	rs.End()
//
// Header names must be constants or otherwise outlive the Records (they are not copied).
// The zero value is empty and ready to use. Records is not safe for concurrent use.
type Records struct {
	// Buf holds the bytes of all records; callers append to it between Begin and End.
	Buf  []byte
	recs []span
	cur  span
	open bool
}

type span struct {
	start, keyEnd, valueEnd int32
	nh                      int8
	hdrNames                [MaxHeaders]string
	hdrEnds                 [MaxHeaders]int32
}

// Begin starts a record at the end of Buf.
func (r *Records) Begin() {
	if r.open {
		panic("kafkaio: Records.Begin inside a record")
	}
	r.open = true
	r.cur = span{start: int32(len(r.Buf))}
}

// EndKey marks the bytes appended since Begin as the key.
func (r *Records) EndKey() { r.cur.keyEnd = int32(len(r.Buf)) }

// EndValue marks the bytes appended since EndKey as the value.
func (r *Records) EndValue() { r.cur.valueEnd = int32(len(r.Buf)) }

// EndHeader marks the bytes appended since the previous End* call as the value of header name.
func (r *Records) EndHeader(name string) {
	if int(r.cur.nh) == MaxHeaders {
		panic(fmt.Sprintf("kafkaio: more than %d headers", MaxHeaders))
	}
	r.cur.hdrNames[r.cur.nh] = name
	r.cur.hdrEnds[r.cur.nh] = int32(len(r.Buf))
	r.cur.nh++
}

// End finishes the record.
func (r *Records) End() {
	if !r.open {
		panic("kafkaio: Records.End without Begin")
	}
	r.open = false
	r.recs = append(r.recs, r.cur)
}

// Len returns the number of finished records.
func (r *Records) Len() int { return len(r.recs) }

// Reset empties the arena, keeping its memory.
func (r *Records) Reset() {
	r.Buf = r.Buf[:0]
	r.recs = r.recs[:0]
	r.open = false
}

// Key returns record i's key (it aliases Buf).
func (r *Records) Key(i int) []byte {
	s := &r.recs[i]
	return r.Buf[s.start:s.keyEnd]
}

// Value returns record i's value (it aliases Buf).
func (r *Records) Value(i int) []byte {
	s := &r.recs[i]
	return r.Buf[s.keyEnd:s.valueEnd]
}

// Header returns record i's header value by name (it aliases Buf).
func (r *Records) Header(i int, name string) ([]byte, bool) {
	s := &r.recs[i]
	prev := s.valueEnd
	for h := range int(s.nh) {
		if s.hdrNames[h] == name {
			return r.Buf[prev:s.hdrEnds[h]], true
		}
		prev = s.hdrEnds[h]
	}
	return nil, false
}

// Size returns an upper bound of record i's size in an uncompressed v2 record batch.
func (r *Records) Size(i int) int {
	s := &r.recs[i]
	last := s.valueEnd
	if s.nh > 0 {
		last = s.hdrEnds[s.nh-1]
	}
	n := recordOverhead + int(last-s.start)
	for h := range int(s.nh) {
		n += len(s.hdrNames[h]) + 6
	}
	return n
}
