package synth

// Ride is one generated green-taxi trip. Money is in cents and distance in hundredths of a mile,
// so that sums are exact; the Parquet writer turns them into the DOUBLE dollars and miles of the
// TLC files (cents/100, the closest double to the decimal value).
//
// Nullable columns: the columns of TLC's null block (PassengerCount, RatecodeID, StoreAndFwd,
// PaymentType, TripType, CongestionCents, CBDCents) are null when NullBlock is set; TripType is
// also null when TripTypeNull is set. ehail_fee is always null and has no field. Fields that are
// null hold 0.
type Ride struct {
	PickupMicros       int64 // lpep_pickup_datetime: µs since the Unix epoch of the NYC wall clock read as UTC
	DropoffMicros      int64 // lpep_dropoff_datetime, same scale
	RatecodeID         int64
	PassengerCount     int64
	DistanceHundredths int64 // trip_distance
	FareCents          int64 // fare_amount
	ExtraCents         int64 // extra
	MTATaxCents        int64 // mta_tax
	TipCents           int64 // tip_amount
	TollsCents         int64 // tolls_amount
	ImprovementCents   int64 // improvement_surcharge
	TotalCents         int64 // total_amount: exactly the sum of the other money fields
	PaymentType        int64
	TripType           int64
	CongestionCents    int64 // congestion_surcharge
	CBDCents           int64 // cbd_congestion_fee
	VendorID           int32
	PULocationID       int32
	DOLocationID       int32
	StoreAndFwd        bool // store_and_fwd_flag "Y" (true) or "N"
	NullBlock          bool // the row belongs to TLC's null block (see above)
	TripTypeNull       bool // trip_type is null outside the null block (rare, as in TLC's files)
	Outlier            OutlierKind
}

// SumCents returns the sum of the money components that make up total_amount.
func (r *Ride) SumCents() int64 {
	return r.FareCents + r.ExtraCents + r.MTATaxCents + r.TipCents + r.TollsCents +
		r.ImprovementCents + r.CongestionCents + r.CBDCents
}

// OutlierKind says how a row's timestamps were displaced (see Config.OutlierRate).
type OutlierKind uint8

const (
	OutlierNone      OutlierKind = iota
	OutlierFarPast               // pickup on 2009-01-01, the classic TLC artifact
	OutlierFarFuture             // pickup 1..365 days after the end of the generated range
	OutlierReversed              // dropoff 1 s..1 h before the pickup
)

// String returns a short name of the kind.
func (k OutlierKind) String() string {
	switch k {
	case OutlierNone:
		return "none"
	case OutlierFarPast:
		return "far-past"
	case OutlierFarFuture:
		return "far-future"
	case OutlierReversed:
		return "reversed"
	}
	return "unknown"
}
