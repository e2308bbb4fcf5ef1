package kafkaio

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/segmentio/kafka-go/compress"

	"github.com/taxi-stream/taxi-stream/codecs"
)

// batchEncoder renders records of an arena as one Kafka record batch (message format v2, the
// "records" field of a produce request including its int32 length), compressing the records
// with codec (nil: none). Rendering the batch here, instead of through kafka-go's RecordSet,
// lets the producer pick the compression level per Producer (kafka-go's codecs are a
// process-wide table) and copies every byte once.
//
// Layout (https://kafka.apache.org/documentation/#recordbatch):
//
//	int32 size | int64 baseOffset | int32 batchLength | int32 partitionLeaderEpoch | int8 magic=2 |
//	uint32 crc32c(attributes..end) | int16 attributes | int32 lastOffsetDelta | int64 baseTimestamp |
//	int64 maxTimestamp | int64 producerId | int16 producerEpoch | int32 baseSequence |
//	int32 count | records
//
// and each record: varint length | int8 attributes | varint timestampDelta | varint offsetDelta |
// varint keyLen | key | varint valueLen | value | varint headerCount | (varint keyLen | key |
// varint valueLen | value)*. Varints are zigzag (binary.AppendVarint).
type batchEncoder struct {
	codec compress.Codec
	plain []byte // the records, uncompressed
	out   bytes.Buffer
}

const batchHeaderSize = 4 + 61

// batchProducer is the idempotent producer's part of a batch header; all -1 without
// idempotence.
type batchProducer struct {
	id       int64
	epoch    int16
	sequence int32
}

// noProducer is the header part of a non-idempotent batch.
var noProducer = batchProducer{id: -1, epoch: -1, sequence: -1}

// encode renders records [first, end) with CreateTime nowMs as a batch of producer bp and
// returns the bytes (valid until the next call).
func (e *batchEncoder) encode(rs *Records, first, end int, nowMs int64, bp batchProducer) ([]byte, error) {
	e.out.Reset()
	var hdr [batchHeaderSize]byte
	e.out.Write(hdr[:])
	dst := e.plain[:0]
	for i := first; i < end; i++ {
		dst = appendRecord(dst, rs, i, int64(i-first))
	}
	e.plain = dst
	if e.codec == nil {
		e.out.Write(dst)
	} else {
		w := e.codec.NewWriter(&e.out)
		if _, err := w.Write(dst); err != nil {
			w.Close()
			return nil, fmt.Errorf("compress %s: %w", e.codec.Name(), err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("compress %s: %w", e.codec.Name(), err)
		}
	}
	b := e.out.Bytes()
	n := end - first
	be := binary.BigEndian
	be.PutUint32(b[0:], uint32(len(b)-4))   // size of the record set
	be.PutUint64(b[4:], 0)                  // base offset (the broker assigns)
	be.PutUint32(b[12:], uint32(len(b)-16)) // batch length: after this field
	be.PutUint32(b[16:], 0xffffffff)        // partition leader epoch -1
	b[20] = 2                               // magic
	var attrs uint16
	if e.codec != nil {
		attrs = uint16(e.codec.Code()) & 0x7 // CreateTime, not transactional, not control
	}
	be.PutUint16(b[25:], attrs)
	be.PutUint32(b[27:], uint32(n-1))           // last offset delta
	be.PutUint64(b[31:], uint64(nowMs))         // base timestamp
	be.PutUint64(b[39:], uint64(nowMs))         // max timestamp
	be.PutUint64(b[47:], uint64(bp.id))         // producer id
	be.PutUint16(b[55:], uint16(bp.epoch))      // producer epoch
	be.PutUint32(b[57:], uint32(bp.sequence))   // base sequence
	be.PutUint32(b[61:], uint32(n))             // record count
	be.PutUint32(b[21:], codecs.CRC32C(b[25:])) // crc of attributes..end
	return b, nil
}

// appendRecord appends record i of rs with the given offset delta (timestamp delta 0: all
// records of a batch get the batch's CreateTime).
func appendRecord(dst []byte, rs *Records, i int, offsetDelta int64) []byte {
	s := &rs.recs[i]
	key := rs.Buf[s.start:s.keyEnd]
	value := rs.Buf[s.keyEnd:s.valueEnd]
	bodyLen := 1 + 1 + varintLen(offsetDelta) + varintLen(int64(len(key))) + len(key) +
		varintLen(int64(len(value))) + len(value) + varintLen(int64(s.nh))
	prev := s.valueEnd
	for h := range int(s.nh) {
		vl := int(s.hdrEnds[h] - prev)
		bodyLen += varintLen(int64(len(s.hdrNames[h]))) + len(s.hdrNames[h]) + varintLen(int64(vl)) + vl
		prev = s.hdrEnds[h]
	}
	dst = binary.AppendVarint(dst, int64(bodyLen))
	dst = append(dst, 0)                        // attributes
	dst = binary.AppendVarint(dst, 0)           // timestamp delta
	dst = binary.AppendVarint(dst, offsetDelta) // offset delta
	dst = binary.AppendVarint(dst, int64(len(key)))
	dst = append(dst, key...)
	dst = binary.AppendVarint(dst, int64(len(value)))
	dst = append(dst, value...)
	dst = binary.AppendVarint(dst, int64(s.nh))
	prev = s.valueEnd
	for h := range int(s.nh) {
		name := s.hdrNames[h]
		dst = binary.AppendVarint(dst, int64(len(name)))
		dst = append(dst, name...)
		dst = binary.AppendVarint(dst, int64(s.hdrEnds[h]-prev))
		dst = append(dst, rs.Buf[prev:s.hdrEnds[h]]...)
		prev = s.hdrEnds[h]
	}
	return dst
}

// varintLen is the length of binary.AppendVarint(nil, v).
func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}
