// Package codecs holds the wire formats of taxi-stream: the TLC trip record and its JSON
// ride message with its one parser and two front ends (DecodeRideFacts, the processor's hot
// path, and DecodeTrip, the full row), the zone lookup table (CSV and JSON), exact two-decimal
// fixed-point conversion, and the CRC-32C and varint reader of the binary encodings.
//
// The formats are specified in docs/design.md ("Ride message", "Topics"). Everything here is
// deterministic: the same value always encodes to the same bytes.
package codecs
