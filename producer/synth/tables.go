package synth

// The tables in this file were derived once from the two real Schema B/C files in shared/data,
// green_tripdata_2024-01.parquet and green_tripdata_2025-01.parquet (104877 rows together), by
// reading them with parquet-go and counting (the script is not kept; the numbers are small
// aggregates, no rows were copied). Where a table says "share" it is per mille or per ten
// thousand of the rows it was counted over, rounded.

// hourShareWeekday and hourShareWeekend are the pickup-hour profiles (per 10000 rows of the hour
// of day 0..23), counted over in-month pickups Monday–Friday and Saturday–Sunday. Night trough
// at 03:00–05:00, evening peak at 17:00 on weekdays; weekends have a late-night tail and a flat
// afternoon.
var hourShareWeekday = [24]float64{
	127, 87, 54, 37, 37, 55, 184, 461, 563, 578, 553, 533,
	519, 560, 608, 712, 778, 860, 807, 620, 453, 337, 272, 204,
}

var hourShareWeekend = [24]float64{
	317, 268, 207, 172, 121, 64, 100, 158, 233, 365, 453, 546,
	572, 648, 700, 729, 747, 709, 680, 635, 512, 430, 332, 301,
}

// dayWeight is the relative number of trips per day of week (time.Weekday order, Sunday first),
// Tuesday = 1. Counted as trips per day of that weekday, 2024-01 and 2025-01 together, excluding
// January 1; Monday was raised from the measured 0.89 because both months hold a Monday holiday
// (MLK day).
var dayWeight = [7]float64{0.69, 0.95, 1.00, 1.04, 1.05, 1.00, 0.80}

// dayNoiseSigma is the spread of the per-day volume factor (same weekday, different days).
const dayNoiseSigma = 0.05

// durationMedianMin is the median trip duration in minutes by pickup hour; speedMedianMph the
// median speed (trip_distance / duration) by pickup hour, over trips longer than one minute.
var durationMedianMin = [24]float64{
	9.3, 9.3, 9.1, 9.0, 10.6, 11.1, 9.4, 11.3, 12.3, 12.2, 12.2, 12.3,
	12.5, 12.2, 12.8, 12.3, 11.7, 11.5, 10.9, 10.1, 9.8, 10.0, 9.3, 9.1,
}

var speedMedianMph = [24]float64{
	12.2, 12.3, 12.2, 12.8, 14.2, 16.0, 12.4, 10.1, 9.4, 10.2, 10.5, 10.4,
	10.2, 10.0, 9.4, 9.3, 9.5, 9.6, 10.1, 11.0, 11.3, 11.6, 12.1, 12.4,
}

// Log-normal spreads: the 5 % and 95 % duration quantiles (2.9 and 33.7 min around a median of
// 10.4) give sigma ≈ 0.75; the 10 % / 90 % speed quantiles (6.6 and 18.0 mph around 10.3) give
// sigma ≈ 0.39.
const (
	durationSigma = 0.75
	speedSigma    = 0.39
)

// puCount and doCount are the number of rows per PULocationID and DOLocationID 1..265 (index
// LocationID-1) in the two files. Zones never seen get weight zoneFloor so that every LocationID
// of the zone table can occur.
var puCount = [265]float64{
	3, 0, 7, 0, 0, 1, 2388, 1, 7, 44, 11, 0, 0, 33, 13, 16, 135, 30, 18, 22, 32, 26, 2, 732, 602,
	29, 1, 58, 47, 0, 3, 11, 916, 17, 71, 97, 78, 10, 53, 63, 4563, 2002, 5541, 0, 3, 2, 43, 2,
	142, 0, 39, 231, 45, 10, 248, 69, 10, 1, 0, 24, 221, 63, 18, 4, 3142, 1167, 15, 2, 105, 95,
	60, 44, 23, 23823, 16523, 121, 21, 45, 0, 292, 15, 4427, 877, 0, 26, 19, 3, 1, 93, 1, 43,
	747, 31, 22, 5157, 4, 3902, 24, 0, 1, 11, 29, 0, 0, 0, 35, 4, 26, 0, 0, 0, 190, 0, 0, 0, 781,
	15, 1, 34, 14, 54, 28, 30, 15, 5, 19, 98, 3, 2219, 2664, 35, 46, 23, 1174, 54, 47, 5, 47, 16,
	5, 2, 2, 2, 0, 224, 167, 14, 0, 18, 30, 13, 409, 6, 7, 25, 0, 165, 0, 112, 26, 2, 1, 0, 0, 41,
	4775, 51, 119, 60, 1, 34, 0, 82, 38, 3, 0, 40, 3, 290, 13, 403, 34, 10, 2, 15, 0, 0, 125, 75,
	13, 57, 20, 673, 5, 258, 482, 82, 34, 0, 10, 2, 44, 8, 0, 26, 3, 25, 19, 2, 384, 1, 52, 32, 0,
	64, 106, 32, 26, 31, 25, 1, 14, 687, 0, 107, 327, 15, 49, 1, 2, 1, 3, 1, 0, 56, 656, 2, 23, 2,
	8, 30, 61, 264, 2492, 0, 1, 133, 25, 0, 18, 0, 15, 6, 30, 390, 154, 5, 19, 17, 1488, 0, 4, 95,
	217, 47,
}

var doCount = [265]float64{
	48, 0, 21, 96, 0, 0, 1315, 8, 27, 254, 8, 4, 60, 93, 24, 64, 499, 61, 24, 53, 37, 32, 3, 1032,
	447, 66, 2, 631, 89, 0, 10, 20, 469, 55, 106, 106, 196, 42, 64, 340, 3612, 3128, 1917, 1, 64,
	2, 75, 589, 1181, 186, 38, 229, 142, 125, 157, 520, 24, 1, 3, 26, 734, 198, 44, 14, 345, 272,
	24, 385, 220, 325, 86, 65, 75, 5468, 6265, 127, 30, 55, 253, 168, 15, 1357, 618, 0, 68, 66,
	106, 75, 343, 145, 72, 409, 61, 44, 2323, 45, 1019, 73, 0, 140, 27, 259, 0, 0, 0, 149, 266, 33,
	0, 0, 2, 296, 124, 93, 0, 1207, 20, 5, 83, 21, 492, 65, 69, 33, 38, 46, 208, 25, 2051, 624,
	145, 825, 69, 795, 534, 60, 244, 2296, 52, 1353, 1499, 1516, 655, 111, 465, 327, 43, 162, 26,
	83, 2400, 988, 9, 2, 27, 0, 313, 82, 203, 383, 648, 565, 515, 230, 57, 3386, 87, 351, 104, 391,
	107, 0, 379, 51, 38, 0, 80, 20, 681, 30, 1026, 54, 14, 1, 28, 257, 0, 370, 440, 61, 139, 97,
	561, 39, 241, 550, 489, 150, 0, 83, 7, 95, 24, 0, 199, 4, 31, 32, 53, 221, 60, 24, 70, 2, 296,
	491, 89, 122, 75, 84, 2, 28, 891, 125, 373, 652, 65, 182, 421, 380, 214, 106, 249, 209, 126,
	5499, 1946, 4221, 2466, 8, 45, 88, 562, 1286, 1, 206, 209, 33, 131, 41, 0, 77, 4, 36, 254, 228,
	83, 188, 28, 782, 71, 1614, 2790, 890, 307,
}

// zoneFloor is the weight of a LocationID that never occurred in the two files.
const zoneFloor = 0.5

// sameZoneShare is the share of trips with DOLocationID == PULocationID (12 % in both files).
const sameZoneShare = 0.12

// congestionZones are the DOLocationIDs where more than half of the trips paid the $2.75
// congestion surcharge (all of them Manhattan "Yellow Zone" zones south of 96th St). Charging
// exactly these trips reproduces the real surcharge column in 96 % of the rows.
var congestionZones = []int32{
	4, 13, 45, 48, 50, 68, 79, 87, 88, 90, 100, 107, 113, 114, 125, 137, 140, 141, 142, 143, 144,
	148, 158, 161, 162, 163, 164, 170, 186, 209, 211, 224, 229, 230, 231, 232, 233, 234, 236, 237,
	238, 239, 246, 249, 261, 262, 263,
}

// cbdZones are the DOLocationIDs where more than 30 % of the 2025-01 trips paid the $0.75 CBD
// congestion fee (Manhattan south of 60th St; the fee started on 2025-01-05). Charging exactly
// these trips reproduces the real fee column in 98 % of the rows.
var cbdZones = []int32{
	4, 12, 13, 45, 48, 50, 68, 79, 87, 88, 90, 100, 107, 113, 114, 125, 137, 144, 148, 158, 161,
	162, 163, 164, 170, 186, 209, 211, 224, 229, 230, 231, 232, 233, 234, 246, 249, 261,
}

// choice is one value of a categorical distribution with its weight.
type choice struct {
	value  int64
	weight float64
}

// Categorical distributions, measured over the rows outside the null block unless noted.
var (
	// passenger_count: 1 84.4 %, 2 8.9 %, 5 2.5 %, 6 1.7 %, 0 1.2 %, 3 1.0 %, 4 0.4 %, 7–9 rare.
	passengerChoices = []choice{
		{1, 8440}, {2, 890}, {5, 250}, {6, 170}, {0, 120}, {3, 100}, {4, 37}, {7, 1}, {8, 1}, {9, 1},
	}
	// payment_type: 1 card 72 %, 2 cash 27 %, 3 no charge 0.8 %, 4 dispute 0.2 %, 5 unknown.
	paymentChoices = []choice{{1, 7170}, {2, 2730}, {3, 77}, {4, 22}, {5, 1}}
	// RatecodeID of street hails (trip_type 1): 1 standard 99.4 %, 5 negotiated, 2 JFK,
	// 4 Nassau/Westchester, 3 Newark, 99 unknown, 6 group ride.
	streetRateChoices = []choice{{1, 9940}, {5, 30}, {2, 20}, {4, 8}, {3, 4}, {99, 2}, {6, 0.1}}
	// fare_amount of negotiated (RatecodeID 5) trips in cents: round amounts dominate.
	negotiatedFareChoices = []choice{
		{1500, 87}, {1000, 86}, {2000, 81}, {2500, 54}, {1200, 47}, {3000, 45}, {5000, 37},
		{900, 36}, {4000, 32}, {3500, 27}, {1400, 26}, {4500, 22}, {800, 21}, {6000, 19}, {1900, 18},
	}
	// Tip of a tipped card trip as a share of the pre-tip amount, in percent: the 20/25/30 %
	// buttons of the payment screen plus custom amounts (spread over 5..35 %, value 0 below).
	tipPercentChoices = []choice{{20, 461}, {25, 103}, {30, 51}, {15, 43}, {10, 35}, {0, 307}}
)

// Scalar shares and amounts (money in cents).
const (
	vendor2Share          = 0.866 // VendorID 2 outside the null block
	vendor2ShareNullBlock = 0.955 // VendorID 2 inside the null block
	storeAndFwdShareV1    = 0.02  // store_and_fwd_flag "Y" among VendorID 1 rows (never VendorID 2)
	dispatchShare         = 0.035 // trip_type 2 (dispatch) outside the null block
	tripTypeNullShare     = 1.5e-4
	zeroDistanceShare     = 0.05  // trip_distance 0
	zeroDurationShare     = 0.001 // dropoff == pickup
	maxDurationMin        = 600.0
	mtaHighShare          = 0.14 // mta_tax 1.50 instead of 0.50 on street hails
	cardTipShare          = 0.88 // card trips with a tip
	nullBlockTipShare     = 0.62 // null-block trips with a tip
	tollLongShare         = 0.14 // trips over tollLongMiles paying a toll
	tollShortShare        = 0.006
	tollLongHundredths    = 500
	tollCents             = 694 // the common $6.94 bridge toll

	meterBaseCents    = 300  // initial charge
	meterTickCents    = 70   // one meter tick: 1/5 mile or one minute in slow traffic
	meterPerMile      = 2.68 // dollars per mile, least squares over RatecodeID 1 trips
	meterPerMinute    = 0.45 // dollars per minute, same fit (base fixed at $3.00)
	jfkFlatCents      = 7000
	newarkExtraCents  = 2000
	overnightCents    = 100 // extra 20:00–06:00
	rushHourCents     = 250 // extra weekdays 16:00–20:00
	mtaCents          = 50
	mtaHighCents      = 150
	congestionCents   = 275
	cbdFeeCents       = 75
	improvementCents  = 100 // since 2022-12-19, 30 before
	improvementOldCts = 30
)
