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

// appendRecord appends the record of r to dst. The fields are written one by one in Column
// order, the bitmap's order (a loop over the columns through Trip.Valid, IntField and
// FloatField cost twice the CPU: it ran on the sort's critical path); TestRecordRoundTrip
// sets every column and would see a field left out.
func appendRecord(dst []byte, r *Row) []byte {
	start := len(dst)
	dst = append(dst, 0, 0) // length placeholder: payloads are < 16 KiB, so 2 varint bytes
	dst = binary.AppendUvarint(dst, uint64(r.File))
	dst = binary.AppendUvarint(dst, uint64(r.Row))
	t := &r.Trip
	dst = binary.AppendUvarint(dst, validBits(t))
	dst = appendInt(dst, t.VendorID)
	dst = appendInt(dst, t.Pickup)
	dst = appendInt(dst, t.Dropoff)
	if t.StoreAndFwdFlag.Valid {
		dst = binary.AppendUvarint(dst, uint64(len(t.StoreAndFwdFlag.V)))
		dst = append(dst, t.StoreAndFwdFlag.V...)
	}
	dst = appendInt(dst, t.RatecodeID)
	dst = appendInt(dst, t.PULocationID)
	dst = appendInt(dst, t.DOLocationID)
	dst = appendInt(dst, t.PassengerCount)
	dst = appendFloat(dst, t.TripDistance)
	dst = appendFloat(dst, t.FareAmount)
	dst = appendFloat(dst, t.Extra)
	dst = appendFloat(dst, t.MTATax)
	dst = appendFloat(dst, t.TipAmount)
	dst = appendFloat(dst, t.TollsAmount)
	dst = appendFloat(dst, t.EhailFee)
	dst = appendFloat(dst, t.ImprovementSurcharge)
	dst = appendFloat(dst, t.TotalAmount)
	dst = appendInt(dst, t.PaymentType)
	dst = appendInt(dst, t.TripType)
	dst = appendFloat(dst, t.CongestionSurcharge)
	dst = appendFloat(dst, t.AirportFee)
	dst = appendFloat(dst, t.CBDCongestionFee)
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

// validBits is the bitmap of the non-null columns of t (bit = codecs.Column).
func validBits(t *codecs.Trip) uint64 {
	bit := func(ok bool, c codecs.Column) uint64 {
		if ok {
			return 1 << c
		}
		return 0
	}
	return bit(t.VendorID.Valid, codecs.ColVendorID) | bit(t.Pickup.Valid, codecs.ColPickup) |
		bit(t.Dropoff.Valid, codecs.ColDropoff) | bit(t.StoreAndFwdFlag.Valid, codecs.ColStoreAndFwdFlag) |
		bit(t.RatecodeID.Valid, codecs.ColRatecodeID) | bit(t.PULocationID.Valid, codecs.ColPULocationID) |
		bit(t.DOLocationID.Valid, codecs.ColDOLocationID) | bit(t.PassengerCount.Valid, codecs.ColPassengerCount) |
		bit(t.TripDistance.Valid, codecs.ColTripDistance) | bit(t.FareAmount.Valid, codecs.ColFareAmount) |
		bit(t.Extra.Valid, codecs.ColExtra) | bit(t.MTATax.Valid, codecs.ColMTATax) |
		bit(t.TipAmount.Valid, codecs.ColTipAmount) | bit(t.TollsAmount.Valid, codecs.ColTollsAmount) |
		bit(t.EhailFee.Valid, codecs.ColEhailFee) | bit(t.ImprovementSurcharge.Valid, codecs.ColImprovementSurcharge) |
		bit(t.TotalAmount.Valid, codecs.ColTotalAmount) | bit(t.PaymentType.Valid, codecs.ColPaymentType) |
		bit(t.TripType.Valid, codecs.ColTripType) | bit(t.CongestionSurcharge.Valid, codecs.ColCongestionSurcharge) |
		bit(t.AirportFee.Valid, codecs.ColAirportFee) | bit(t.CBDCongestionFee.Valid, codecs.ColCBDCongestionFee)
}

func appendInt(dst []byte, v codecs.NullInt) []byte {
	if !v.Valid {
		return dst
	}
	return binary.AppendVarint(dst, v.V)
}

func appendFloat(dst []byte, v codecs.NullFloat) []byte {
	if !v.Valid {
		return dst
	}
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.V))
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
	d := fieldReader{p: p, valid: valid}
	d.int(codecs.ColVendorID, &t.VendorID)
	d.int(codecs.ColPickup, &t.Pickup)
	d.int(codecs.ColDropoff, &t.Dropoff)
	d.string(codecs.ColStoreAndFwdFlag, &t.StoreAndFwdFlag)
	d.int(codecs.ColRatecodeID, &t.RatecodeID)
	d.int(codecs.ColPULocationID, &t.PULocationID)
	d.int(codecs.ColDOLocationID, &t.DOLocationID)
	d.int(codecs.ColPassengerCount, &t.PassengerCount)
	d.float(codecs.ColTripDistance, &t.TripDistance)
	d.float(codecs.ColFareAmount, &t.FareAmount)
	d.float(codecs.ColExtra, &t.Extra)
	d.float(codecs.ColMTATax, &t.MTATax)
	d.float(codecs.ColTipAmount, &t.TipAmount)
	d.float(codecs.ColTollsAmount, &t.TollsAmount)
	d.float(codecs.ColEhailFee, &t.EhailFee)
	d.float(codecs.ColImprovementSurcharge, &t.ImprovementSurcharge)
	d.float(codecs.ColTotalAmount, &t.TotalAmount)
	d.int(codecs.ColPaymentType, &t.PaymentType)
	d.int(codecs.ColTripType, &t.TripType)
	d.float(codecs.ColCongestionSurcharge, &t.CongestionSurcharge)
	d.float(codecs.ColAirportFee, &t.AirportFee)
	d.float(codecs.ColCBDCongestionFee, &t.CBDCongestionFee)
	if d.bad {
		return errCorruptRun
	}
	if len(d.p) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errCorruptRun, len(d.p))
	}
	return nil
}

// fieldReader reads the fields of a record payload in Column order; after the first
// malformed field it reads nothing more and bad is set.
type fieldReader struct {
	p     []byte
	valid uint64
	bad   bool
}

func (d *fieldReader) int(c codecs.Column, dst *codecs.NullInt) {
	if d.valid&(1<<c) == 0 || d.bad {
		return
	}
	v, n := binary.Varint(d.p)
	if n <= 0 {
		d.bad = true
		return
	}
	*dst = codecs.Int(v)
	d.p = d.p[n:]
}

func (d *fieldReader) float(c codecs.Column, dst *codecs.NullFloat) {
	if d.valid&(1<<c) == 0 || d.bad {
		return
	}
	if len(d.p) < 8 {
		d.bad = true
		return
	}
	*dst = codecs.Float(math.Float64frombits(binary.LittleEndian.Uint64(d.p)))
	d.p = d.p[8:]
}

func (d *fieldReader) string(c codecs.Column, dst *codecs.NullString) {
	if d.valid&(1<<c) == 0 || d.bad {
		return
	}
	l, n := binary.Uvarint(d.p)
	if n <= 0 || uint64(len(d.p)-n) < l {
		d.bad = true
		return
	}
	*dst = codecs.String(internString(d.p[n : n+int(l)]))
	d.p = d.p[n+int(l):]
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
