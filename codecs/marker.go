package codecs

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Watermark markers: the replay producer's in-band event-time progress messages
// (docs/design.md, "Watermark markers").
const (
	// MarkerKey is the key of every marker message.
	MarkerKey = "__taxi_stream_watermark__"
	// HeaderKind is the header that tells markers ("watermark") from rides.
	HeaderKind = "ts-kind"
	// KindWatermark is HeaderKind's value on markers.
	KindWatermark = "watermark"
	// HeaderSeq is the 0-based position in the replay's send order (rides and markers).
	HeaderSeq = "ts-seq"
	// HeaderSource is the source file's base name of a ride.
	HeaderSource = "ts-source"
	// HeaderRow is a ride's 0-based row index in its source file.
	HeaderRow = "ts-row"
	// HeaderDeadReason is set on dead-letter records: why the input was rejected.
	HeaderDeadReason = "ts-dead-reason"
	// HeaderLateWatermark is set on late records: the partition watermark (epoch ms
	// wall clock) when the ride arrived.
	HeaderLateWatermark = "ts-late-watermark"
	// HeaderLateWindowEnd is set on late records: the end of the ride's earliest
	// window, which had already closed.
	HeaderLateWindowEnd = "ts-late-window-end"
	// HeaderLateReason is set on late records: LateWindowClosed, or
	// LateAfterFinalMarker for a ride that arrived after its partition's final
	// watermark marker (a producer that appends to a finished topic: docs/design.md).
	HeaderLateReason = "ts-late-reason"
	// HeaderInputTopic, HeaderInputPartition and HeaderInputOffset are set on late
	// and dead-letter records: where the input came from.
	HeaderInputTopic     = "ts-input-topic"
	HeaderInputPartition = "ts-input-partition"
	HeaderInputOffset    = "ts-input-offset"
	// HeaderApp names the processor app (taxi-stream --app) that wrote a record: on
	// the partials of its repartition topic (its windows stage refuses another app's)
	// and on its results, late and dead-letter records (shared topics by default).
	HeaderApp = "ts-app"
)

// Values of HeaderLateReason.
const (
	LateWindowClosed     = "window closed"
	LateAfterFinalMarker = "after the final watermark marker"
	// LateBeyondAllowedLateness: the window closed more than the allowed lateness
	// (taxi-stream --allowed-lateness > 0) before the ride arrived; it has left the
	// state, so no revision can count the ride.
	LateBeyondAllowedLateness = "window closed beyond the allowed lateness"
)

// Marker is a watermark marker's value.
type Marker struct {
	Type        string `json:"type"` // always "watermark"
	WatermarkMs int64  `json:"watermark_ms"`
	Final       bool   `json:"final"`
	AfterSeq    int64  `json:"after_seq"` // rides at positions <= AfterSeq precede the marker (-1: none)
	Rows        int64  `json:"rows"`      // rides sent before the marker
}

// AppendMarkerJSON appends m's JSON encoding (fixed field order).
func AppendMarkerJSON(dst []byte, m Marker) []byte {
	dst = append(dst, `{"type":"watermark","watermark_ms":`...)
	dst = strconv.AppendInt(dst, m.WatermarkMs, 10)
	dst = append(dst, `,"final":`...)
	dst = strconv.AppendBool(dst, m.Final)
	dst = append(dst, `,"after_seq":`...)
	dst = strconv.AppendInt(dst, m.AfterSeq, 10)
	dst = append(dst, `,"rows":`...)
	dst = strconv.AppendInt(dst, m.Rows, 10)
	return append(dst, '}')
}

// DecodeMarker parses a marker value.
func DecodeMarker(data []byte) (Marker, error) {
	var m Marker
	if err := json.Unmarshal(data, &m); err != nil {
		return Marker{}, fmt.Errorf("watermark marker: %w", err)
	}
	if m.Type != KindWatermark {
		return Marker{}, fmt.Errorf("watermark marker: type %q, want %q", m.Type, KindWatermark)
	}
	return m, nil
}
