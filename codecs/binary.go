package codecs

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Helpers of the binary encodings (Kafka record batches, the processors' table values and
// snapshots), shared so that each exists once.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns the CRC-32C (Castagnoli) checksum of b, the checksum of Kafka record batches
// and of the processors' binary encodings.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// BinaryReader reads a binary encoding front to back: bytes and varints (encoding/binary's
// Uvarint and zigzag Varint). The first error sticks: later reads return 0 and leave Buf as it
// is, so a decoder can read a run of fields and check Err once.
type BinaryReader struct {
	Buf []byte // the bytes not read yet
	Err error  // the first error
}

// Fail records err unless an error is already recorded.
func (r *BinaryReader) Fail(err error) {
	if r.Err == nil {
		r.Err = err
	}
}

// Byte reads one byte; what names it in the error ("missing <what>").
func (r *BinaryReader) Byte(what string) byte {
	if r.Err != nil {
		return 0
	}
	if len(r.Buf) == 0 {
		r.Fail(fmt.Errorf("missing %s", what))
		return 0
	}
	c := r.Buf[0]
	r.Buf = r.Buf[1:]
	return c
}

// Uvarint reads an unsigned varint; what names it in the error ("bad varint for <what>").
func (r *BinaryReader) Uvarint(what string) uint64 {
	if r.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.Buf)
	if n <= 0 {
		r.Fail(fmt.Errorf("bad varint for %s", what))
		return 0
	}
	r.Buf = r.Buf[n:]
	return v
}

// Varint reads a zigzag varint; what names it in the error ("bad varint for <what>").
func (r *BinaryReader) Varint(what string) int64 {
	if r.Err != nil {
		return 0
	}
	v, n := binary.Varint(r.Buf)
	if n <= 0 {
		r.Fail(fmt.Errorf("bad varint for %s", what))
		return 0
	}
	r.Buf = r.Buf[n:]
	return v
}
