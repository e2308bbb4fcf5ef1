// Package codecs holds the wire formats of taxi-stream: the TLC trip record and its JSON
// ride message, the processor's hot-path ride decoder, the zone lookup table (CSV and JSON),
// exact two-decimal fixed-point conversion, and typed goka codecs.
//
// The formats are specified in docs/design.md ("Ride message", "Topics"). Everything here is
// deterministic: the same value always encodes to the same bytes.
package codecs
