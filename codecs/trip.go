package codecs

import "math/bits"

// NullInt is a nullable int64. The zero value is null.
type NullInt struct {
	V     int64
	Valid bool
}

// NullFloat is a nullable float64. The zero value is null.
type NullFloat struct {
	V     float64
	Valid bool
}

// NullString is a nullable string. The zero value is null.
type NullString struct {
	V     string
	Valid bool
}

// Int returns a valid NullInt.
func Int(v int64) NullInt { return NullInt{V: v, Valid: true} }

// Float returns a valid NullFloat.
func Float(v float64) NullFloat { return NullFloat{V: v, Valid: true} }

// String returns a valid NullString.
func String(v string) NullString { return NullString{V: v, Valid: true} }

// Column identifies one TLC trip column, independent of the taxi flavor (green files name the
// timestamps lpep_*, yellow files tpep_*).
type Column uint8

// The columns, in green file order (cbd_congestion_fee last, airport_fee is yellow only).
const (
	ColVendorID Column = iota
	ColPickup          // lpep_pickup_datetime / tpep_pickup_datetime
	ColDropoff         // lpep_dropoff_datetime / tpep_dropoff_datetime
	ColStoreAndFwdFlag
	ColRatecodeID
	ColPULocationID
	ColDOLocationID
	ColPassengerCount
	ColTripDistance
	ColFareAmount
	ColExtra
	ColMTATax
	ColTipAmount
	ColTollsAmount
	ColEhailFee
	ColImprovementSurcharge
	ColTotalAmount
	ColPaymentType
	ColTripType
	ColCongestionSurcharge
	ColAirportFee // yellow only; spelled airport_fee or Airport_fee (Layout.AirportFeeCapital)
	ColCBDCongestionFee
	NumColumns // number of columns; not a column
)

// ColumnType says how a column's values are held in a Trip.
type ColumnType uint8

const (
	// TypeTimestamp columns hold epoch milliseconds in a NullInt.
	TypeTimestamp ColumnType = iota + 1
	// TypeString columns hold a NullString.
	TypeString
	// TypeCode columns hold an integer code in a NullInt. Their source type is INT32, INT64 or
	// DOUBLE (Layout.Double says which kind of JSON number is written).
	TypeCode
	// TypeAmount columns hold money (dollars) or distance (miles) in a NullFloat.
	TypeAmount
)

var columnTypes = [NumColumns]ColumnType{
	ColVendorID: TypeCode, ColPickup: TypeTimestamp, ColDropoff: TypeTimestamp,
	ColStoreAndFwdFlag: TypeString, ColRatecodeID: TypeCode, ColPULocationID: TypeCode,
	ColDOLocationID: TypeCode, ColPassengerCount: TypeCode, ColTripDistance: TypeAmount,
	ColFareAmount: TypeAmount, ColExtra: TypeAmount, ColMTATax: TypeAmount, ColTipAmount: TypeAmount,
	ColTollsAmount: TypeAmount, ColEhailFee: TypeAmount, ColImprovementSurcharge: TypeAmount,
	ColTotalAmount: TypeAmount, ColPaymentType: TypeCode, ColTripType: TypeCode,
	ColCongestionSurcharge: TypeAmount, ColAirportFee: TypeAmount, ColCBDCongestionFee: TypeAmount,
}

// Type returns how the column's values are held.
func (c Column) Type() ColumnType { return columnTypes[c] }

// Flavor is the taxi type of a source file; it decides the timestamp column names and the
// column order of the JSON message.
type Flavor uint8

const (
	// Green files (lpep_ timestamps).
	Green Flavor = iota
	// Yellow files (tpep_ timestamps).
	Yellow
)

func (f Flavor) String() string {
	if f == Yellow {
		return "yellow"
	}
	return "green"
}

// ColumnSet is a set of columns (one bit per Column).
type ColumnSet uint32

// Has reports whether c is in the set.
func (s ColumnSet) Has(c Column) bool { return s&(1<<c) != 0 }

// With returns the set plus c.
func (s ColumnSet) With(c Column) ColumnSet { return s | 1<<c }

// Without returns the set minus c.
func (s ColumnSet) Without(c Column) ColumnSet { return s &^ (1 << c) }

// Len returns the number of columns in the set.
func (s ColumnSet) Len() int { return bits.OnesCount32(uint32(s)) }

// Layout records what the source of a trip looked like: its flavor, which columns it had (so
// that a 2020 file's message has no cbd_congestion_fee key) and which TypeCode columns were
// DOUBLE in the source (so that JSON writes 1.0 for them, as pandas' to_json did, and 1 for
// INT32/INT64 columns). A Layout is a small comparable value shared by all rows of a file.
type Layout struct {
	Flavor  Flavor
	Present ColumnSet
	// Double holds the TypeCode columns whose source type was DOUBLE. TypeAmount columns are
	// always written as doubles and need no bit.
	Double ColumnSet
	// AirportFeeCapital selects the spelling "Airport_fee" (yellow 2024+) over "airport_fee".
	AirportFeeCapital bool
}

// Name returns the column's name in this layout (e.g. lpep_dropoff_datetime).
func (l Layout) Name(c Column) string { return columnNames[l.nameIndex(c)][c] }

func (l Layout) nameIndex(c Column) int {
	if c == ColAirportFee && l.AirportFeeCapital {
		return 2
	}
	return int(l.Flavor & 1)
}

var columnNames = [3][NumColumns]string{
	greenNames,
	yellowNames(),
	capitalAirportNames(),
}

var greenNames = [NumColumns]string{
	ColVendorID: "VendorID", ColPickup: "lpep_pickup_datetime", ColDropoff: "lpep_dropoff_datetime",
	ColStoreAndFwdFlag: "store_and_fwd_flag", ColRatecodeID: "RatecodeID", ColPULocationID: "PULocationID",
	ColDOLocationID: "DOLocationID", ColPassengerCount: "passenger_count", ColTripDistance: "trip_distance",
	ColFareAmount: "fare_amount", ColExtra: "extra", ColMTATax: "mta_tax", ColTipAmount: "tip_amount",
	ColTollsAmount: "tolls_amount", ColEhailFee: "ehail_fee", ColImprovementSurcharge: "improvement_surcharge",
	ColTotalAmount: "total_amount", ColPaymentType: "payment_type", ColTripType: "trip_type",
	ColCongestionSurcharge: "congestion_surcharge", ColAirportFee: "airport_fee",
	ColCBDCongestionFee: "cbd_congestion_fee",
}

func yellowNames() [NumColumns]string {
	n := greenNames
	n[ColPickup] = "tpep_pickup_datetime"
	n[ColDropoff] = "tpep_dropoff_datetime"
	return n
}

func capitalAirportNames() [NumColumns]string {
	n := yellowNames()
	n[ColAirportFee] = "Airport_fee"
	return n
}

// columnOrder is the JSON key order per flavor: the column order of TLC's own files.
var columnOrder = [2][]Column{
	Green: {ColVendorID, ColPickup, ColDropoff, ColStoreAndFwdFlag, ColRatecodeID, ColPULocationID,
		ColDOLocationID, ColPassengerCount, ColTripDistance, ColFareAmount, ColExtra, ColMTATax,
		ColTipAmount, ColTollsAmount, ColEhailFee, ColImprovementSurcharge, ColTotalAmount,
		ColPaymentType, ColTripType, ColCongestionSurcharge, ColAirportFee, ColCBDCongestionFee},
	Yellow: {ColVendorID, ColPickup, ColDropoff, ColPassengerCount, ColTripDistance, ColRatecodeID,
		ColStoreAndFwdFlag, ColPULocationID, ColDOLocationID, ColPaymentType, ColFareAmount, ColExtra,
		ColMTATax, ColTipAmount, ColTollsAmount, ColImprovementSurcharge, ColTotalAmount,
		ColCongestionSurcharge, ColAirportFee, ColCBDCongestionFee, ColEhailFee, ColTripType},
}

// ColumnOrder returns the columns of the flavor in JSON key order (all columns, present or not).
// The returned slice must not be modified.
func ColumnOrder(f Flavor) []Column { return columnOrder[f&1] }

// LookupColumn maps a column name (either flavor, either airport fee spelling) to its column and
// the flavor the name implies (only the timestamp names imply one; ok2 reports that).
func LookupColumn(name string) (c Column, f Flavor, impliesFlavor bool, ok bool) {
	switch name {
	case "lpep_pickup_datetime":
		return ColPickup, Green, true, true
	case "lpep_dropoff_datetime":
		return ColDropoff, Green, true, true
	case "tpep_pickup_datetime":
		return ColPickup, Yellow, true, true
	case "tpep_dropoff_datetime":
		return ColDropoff, Yellow, true, true
	case "Airport_fee":
		return ColAirportFee, Yellow, false, true
	}
	for i, n := range greenNames {
		if n == name {
			return Column(i), Green, false, true
		}
	}
	return 0, 0, false, false
}

// GreenLayoutA is the layout of TLC's green files 2020-12 and 2023-01 (SOURCES.md schema A):
// 20 columns, the integer codes RatecodeID, passenger_count, payment_type and trip_type DOUBLE.
var GreenLayoutA = Layout{
	Flavor:  Green,
	Present: allColumns.Without(ColAirportFee).Without(ColCBDCongestionFee),
	Double: ColumnSet(0).With(ColRatecodeID).With(ColPassengerCount).With(ColPaymentType).
		With(ColTripType),
}

// GreenLayoutB is the layout of green 2024-01 (schema B): integer codes are INT32/INT64.
var GreenLayoutB = Layout{
	Flavor:  Green,
	Present: allColumns.Without(ColAirportFee).Without(ColCBDCongestionFee),
}

// GreenLayoutC is the layout of green 2025-01 (schema C): schema B plus cbd_congestion_fee.
var GreenLayoutC = Layout{
	Flavor:  Green,
	Present: allColumns.Without(ColAirportFee),
}

const allColumns = ColumnSet(1<<NumColumns - 1)

// Trip is one TLC trip record. Every column is nullable; Layout says which columns the source
// had and how to write them. Timestamps are epoch milliseconds of the NYC wall clock read as UTC
// (the Parquet TIMESTAMP(MICROS, adjustedToUTC=false) value floored to ms). Money is in dollars,
// distance in miles, as in the source.
type Trip struct {
	Layout Layout

	VendorID             NullInt
	Pickup               NullInt // epoch ms
	Dropoff              NullInt // epoch ms
	StoreAndFwdFlag      NullString
	RatecodeID           NullInt
	PULocationID         NullInt
	DOLocationID         NullInt
	PassengerCount       NullInt
	TripDistance         NullFloat
	FareAmount           NullFloat
	Extra                NullFloat
	MTATax               NullFloat
	TipAmount            NullFloat
	TollsAmount          NullFloat
	EhailFee             NullFloat
	ImprovementSurcharge NullFloat
	TotalAmount          NullFloat
	PaymentType          NullInt
	TripType             NullInt
	CongestionSurcharge  NullFloat
	AirportFee           NullFloat
	CBDCongestionFee     NullFloat
}

// IntField returns a pointer to the NullInt of a TypeTimestamp or TypeCode column, or nil.
func (t *Trip) IntField(c Column) *NullInt {
	switch c {
	case ColVendorID:
		return &t.VendorID
	case ColPickup:
		return &t.Pickup
	case ColDropoff:
		return &t.Dropoff
	case ColRatecodeID:
		return &t.RatecodeID
	case ColPULocationID:
		return &t.PULocationID
	case ColDOLocationID:
		return &t.DOLocationID
	case ColPassengerCount:
		return &t.PassengerCount
	case ColPaymentType:
		return &t.PaymentType
	case ColTripType:
		return &t.TripType
	}
	return nil
}

// FloatField returns a pointer to the NullFloat of a TypeAmount column, or nil.
func (t *Trip) FloatField(c Column) *NullFloat {
	switch c {
	case ColTripDistance:
		return &t.TripDistance
	case ColFareAmount:
		return &t.FareAmount
	case ColExtra:
		return &t.Extra
	case ColMTATax:
		return &t.MTATax
	case ColTipAmount:
		return &t.TipAmount
	case ColTollsAmount:
		return &t.TollsAmount
	case ColEhailFee:
		return &t.EhailFee
	case ColImprovementSurcharge:
		return &t.ImprovementSurcharge
	case ColTotalAmount:
		return &t.TotalAmount
	case ColCongestionSurcharge:
		return &t.CongestionSurcharge
	case ColAirportFee:
		return &t.AirportFee
	case ColCBDCongestionFee:
		return &t.CBDCongestionFee
	}
	return nil
}

// Valid reports whether column c holds a non-null value.
func (t *Trip) Valid(c Column) bool {
	switch c.Type() {
	case TypeString:
		return t.StoreAndFwdFlag.Valid
	case TypeAmount:
		return t.FloatField(c).Valid
	default:
		return t.IntField(c).Valid
	}
}
