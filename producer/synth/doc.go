// Package synth generates synthetic NYC green-taxi trips for scale tests, benchmarks and demos
// where no real file exists (or a real one is too small), and writes them as Parquet with the
// exact schema of TLC's 2025 files (Schema C of shared/data/SOURCES.md).
//
// The distributions are derived from the real 2024-01 and 2025-01 green files (see tables.go):
//   - pickups per hour follow weekday and weekend hour profiles (night trough, evening peak),
//     weekday weights and a small per-day noise;
//   - PULocationID and DOLocationID follow the real zone popularity (East Harlem 74/75 carry
//     about 40 % of the pickups), 12 % of trips end in their pickup zone;
//   - durations are log-normal around the hour's median, distance is duration times a
//     log-normal speed (so the two correlate), 5 % of trips have distance 0;
//   - fare_amount is a taximeter ($3.00 + $0.70 ticks per 1/5 mile and per slow minute),
//     flat JFK and negotiated fares for RatecodeID 2 and 5; extra, mta_tax,
//     improvement_surcharge, tolls, congestion_surcharge and cbd_congestion_fee follow the TLC
//     rules of the pickup date; tips go mostly to card trips (20/25/30 % buttons);
//     total_amount is exactly the sum of the components;
//   - about 6 % of the rows form TLC's "null block" (passenger_count, RatecodeID,
//     store_and_fwd_flag, payment_type, trip_type, congestion_surcharge, cbd_congestion_fee
//     null together), some passenger_count are 0, ehail_fee is always null;
//   - 1 in 100k rows (configurable, 0 turns it off) gets broken timestamps: 2009-01-01, far
//     future, or dropoff before pickup.
//
// Row order is sorted by pickup (OrderSorted) or TLC-like (OrderTLC): hour by hour with the
// rows of an hour shuffled, the null block last, starting over at the beginning of the month.
//
// The same Config gives a byte-identical file, whatever GOMAXPROCS. Money and distance are
// generated in cents and hundredths of a mile (Ride), so sums are exact.
//
// Entry points: New(Config) and Generator.Generate (batches of Rides in memory),
// Generator.Rides, Generator.WriteParquet, WriteFile; cmd/taxi-gen wraps WriteFile.
package synth
