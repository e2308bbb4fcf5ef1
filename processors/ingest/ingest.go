// Package ingest is the first stage of the topology: it reads rides (and the
// producer's watermark markers) from the rides topic, sends what it cannot parse to
// the dead-letter topic, joins each ride's pickup zone to its borough, applies the
// watermark rule (late rides go whole to the late topic), and adds on-time rides
// into an in-memory partial aggregate per (window, borough).
//
// At every commit (eos.Hooks.Flush) each input partition's partial sums and its
// watermark are sent to the windows stage's repartition topic, and the partition's
// watermark tracker is committed as the metadata of its input offset, in the same
// transaction. The stage keeps no other state: after a crash it resumes from the
// committed offset with the committed tracker, so its decisions are the same.
package ingest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/taxi-stream/taxi-stream/codecs"
	"github.com/taxi-stream/taxi-stream/processors/aggregate"
	"github.com/taxi-stream/taxi-stream/processors/eos"
	"github.com/taxi-stream/taxi-stream/topology/watermark"
	"github.com/taxi-stream/taxi-stream/topology/window"
)

// UnknownBorough is the borough of a ride whose PULocationID is not in the zone table.
const UnknownBorough = "Unknown"

// Config configures the stage.
type Config struct {
	RidesTopic string
	// App is the processor app (taxi-stream --app): every partial carries it
	// (codecs.HeaderApp), so that the windows stage can refuse another app's, and so
	// do the late and dead-letter records. "" writes no header.
	App string
	// Zones is the zone table (keyed by LocationID, raw zone records). It must
	// outlive every callback of the stage: the pipeline owns a goka view for it.
	Zones        ZoneTable
	LateTopic    goka.Stream
	DeadTopic    goka.Stream
	WindowsTopic string
	// WindowsPartitions is the partition count of WindowsTopic (and of the windows stage).
	WindowsPartitions int
	Window            window.Spec
	Watermark         watermark.Config
	// EventTimeField is the ride field that holds the event time ("" = dropoff time).
	EventTimeField string
	Logger         *slog.Logger
	// WatermarkPassed, when set, is called from the callback each time a partition's
	// watermark passes one or more slide boundaries (window ends), with the new
	// watermark (watermark.Closed after a final marker). It feeds close-delay
	// measurements; keep it cheap.
	WatermarkPassed func(partition int32, watermarkMs int64)

	// AllowedLateness (taxi-stream --allowed-lateness): a ride whose earliest window
	// closed less than this long ago (its end > watermark − AllowedLateness) is still
	// counted; the windows stage emits a revision of that window's result. 0: a ride
	// for a closed window is late (goes to the late topic).
	AllowedLateness time.Duration
	// IdleTimeout (taxi-stream --idle-timeout): a partition in data mode (no
	// producer markers) that is caught up and delivered nothing for this long no
	// longer holds the watermark back (docs/design.md "Idle partitions"). 0: off.
	IdleTimeout time.Duration
	// CloseOnIdle: an idle partition raises its watermark past every window holding
	// a ride seen so far (a finite replay without markers ends with every window
	// closed). Needs IdleTimeout > 0.
	CloseOnIdle bool
	// Progress tells where each input partition stands (the stage's eos.Runtime);
	// needed when IdleTimeout > 0.
	Progress Progress
	// OtherWatermarks returns the latest watermark of each ingest partition known
	// elsewhere in this process (the windows stage's state); the stage's own
	// partitions override it. May be nil.
	OtherWatermarks func() map[int32]int64
	// Now is the clock of idle detection (default time.Now).
	Now func() time.Time
}

// Progress is the part of eos.Runtime that idle detection needs.
type Progress interface {
	Position(topic string, partition int32) (eos.Position, bool)
	LogEnd(topic string, partition int32, timeout time.Duration) (int64, error)
}

// ZoneTable returns the raw zone record of a LocationID (nil when there is none).
type ZoneTable interface {
	Get(locationID string) ([]byte, error)
}

// VersionedZoneTable is a ZoneTable that counts its changes. The stage then keeps
// each LocationID's borough until the version moves: a lookup through a goka view
// (key hash, partition table, storage lock) cost ~5 % of the CPU of a ride.
type VersionedZoneTable interface {
	ZoneTable
	// Version moves after every change, once Get returns the changed record.
	Version() uint64
}

// StaticZones is a fixed zone table (LocationID -> raw zone record), for tests and
// tools that have no zones topic.
type StaticZones map[string][]byte

// Get implements ZoneTable.
func (z StaticZones) Get(locationID string) ([]byte, error) { return z[locationID], nil }

// Counters are the stage's running totals over all partitions this instance ran.
type Counters struct {
	In      atomic.Int64 // ride messages read, and malformed markers (they are dead-lettered); valid markers excluded
	OnTime  atomic.Int64 // rides added to a window
	Late    atomic.Int64 // rides sent to the late topic
	Dead    atomic.Int64 // messages sent to the dead-letter topic
	Markers atomic.Int64 // watermark markers read
	// Idle partitions (IdleTimeout): how many of this instance's partitions are idle
	// now, and how often an idle partition's watermark was raised.
	Idle         atomic.Int64
	IdleAdvances atomic.Int64
}

// Stage is the ingest stage of one instance.
type Stage struct {
	cfg        Config
	committer  interface{ RequestCommit() }
	windowKeys []string
	Counters   Counters

	mu    sync.Mutex // guards parts; each partition's state is used by one goroutine at a time
	parts map[int32]*partitionState

	partialHeaders []sarama.RecordHeader
	// versioned is cfg.Zones when it counts its changes (boroughs are then cached).
	versioned VersionedZoneTable
}

type partitionState struct {
	tracker  *watermark.Tracker
	combiner aggregate.Combiner
	windows  []window.Window // scratch
	// the watermark last sent to the windows stage
	sentWM    int64
	sentHasWM bool
	// the watermark last reported to Config.WatermarkPassed
	passedWM  int64
	passedHas bool
	// zoneCache maps a raw zone record to its borough (the partition's goroutine
	// only, so a plain map: a sync.Map keyed by string(raw) allocated ~95 bytes a ride).
	// Keyed by the record, so a zone updated in the table is decoded again.
	zoneCache map[string]string
	// boroughs caches the borough of LocationID i (0 <= i < len: "" not cached)
	// while the table's version is zonesVersion (VersionedZoneTable only).
	boroughs     []string
	zonesVersion uint64
	// idle detection (idle.go)
	lastNext   int64     // the partition's next offset at the last flush
	lastActive time.Time // when that offset last moved (or the partition was assigned)
	idle       bool
	// The wall clock of an idle partition: event time runs on from wallAt, its
	// watermark at wallFrom (set when it went idle or was last raised).
	wallFrom  time.Time
	wallAt    int64
	wallSet   bool
	nextCheck time.Time // no log-end check before this (after a failed one)
}

// New creates the stage. committer is asked for an early commit when a partition's
// watermark passes a window end, so that results do not wait for the interval.
func New(cfg Config, committer interface{ RequestCommit() }) (*Stage, error) {
	if err := cfg.Window.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Watermark.Validate(); err != nil {
		return nil, err
	}
	if cfg.Zones == nil {
		return nil, errors.New("ingest: no zone table")
	}
	if cfg.WindowsPartitions <= 0 {
		return nil, fmt.Errorf("ingest: windows partitions must be > 0, not %d", cfg.WindowsPartitions)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AllowedLateness < 0 || cfg.AllowedLateness%time.Millisecond != 0 {
		return nil, fmt.Errorf("ingest: allowed lateness %v: must be >= 0 and whole milliseconds", cfg.AllowedLateness)
	}
	if cfg.IdleTimeout < 0 {
		return nil, fmt.Errorf("ingest: idle timeout %v: must be >= 0", cfg.IdleTimeout)
	}
	if cfg.IdleTimeout > 0 && cfg.Progress == nil {
		return nil, errors.New("ingest: idle detection needs the partitions' progress (Config.Progress)")
	}
	if cfg.CloseOnIdle && cfg.IdleTimeout == 0 {
		return nil, errors.New("ingest: close on idle needs an idle timeout > 0")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var partialHeaders []sarama.RecordHeader
	if cfg.App != "" {
		partialHeaders = []sarama.RecordHeader{{Key: []byte(codecs.HeaderApp), Value: []byte(cfg.App)}}
	}
	versioned, _ := cfg.Zones.(VersionedZoneTable)
	return &Stage{
		versioned:      versioned,
		partialHeaders: partialHeaders,
		cfg:            cfg,
		committer:      committer,
		windowKeys:     PartitionKeys(cfg.WindowsPartitions),
		parts:          map[int32]*partitionState{},
	}, nil
}

func (s *Stage) partition(p int32) *partitionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.parts[p]
	if st == nil {
		// Not assigned through Assigned (e.g. goka's tester): start empty.
		st = &partitionState{tracker: watermark.MustNew(s.cfg.Watermark)}
		s.parts[p] = st
	}
	return st
}

// Process is the goka callback for the rides topic.
func (s *Stage) Process(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	st := s.partition(ctx.Partition())
	if string(ctx.Headers()[codecs.HeaderKind]) == codecs.KindWatermark {
		m, err := codecs.DecodeMarker(raw)
		if err != nil {
			// It ends on the dead-letter topic: counted as input, so that
			// in = counted + late + dead holds exactly.
			s.Counters.In.Add(1)
			s.dead(ctx, raw, "bad watermark marker: "+err.Error())
			return
		}
		s.Counters.Markers.Add(1)
		st.tracker.ObserveMarker(m.WatermarkMs, m.Final)
		s.maybeRequestCommit(ctx, st)
		return
	}
	s.Counters.In.Add(1)
	facts, err := codecs.DecodeRideFacts(raw, s.cfg.EventTimeField)
	if err != nil {
		s.dead(ctx, raw, err.Error())
		return
	}
	first := s.cfg.Window.Earliest(facts.EventMs)
	if wm, ok := st.tracker.Watermark(); ok && (wm == watermark.Closed || first.EndMs <= subSat(wm, s.cfg.AllowedLateness.Milliseconds())) {
		s.Counters.Late.Add(1)
		reason := codecs.LateWindowClosed
		switch {
		case wm == watermark.Closed:
			reason = codecs.LateAfterFinalMarker
		case s.cfg.AllowedLateness > 0:
			reason = codecs.LateBeyondAllowedLateness
		}
		ctx.Emit(s.cfg.LateTopic, ctx.Key(), raw, goka.WithCtxEmitHeaders(s.inputHeaders(ctx, goka.Headers{
			codecs.HeaderLateWatermark: []byte(strconv.FormatInt(wm, 10)),
			codecs.HeaderLateWindowEnd: []byte(strconv.FormatInt(first.EndMs, 10)),
			codecs.HeaderLateReason:    []byte(reason),
		})))
		st.tracker.ObserveEvent(facts.EventMs)
		return
	}
	ride := aggregate.Ride{
		EventMs:            facts.EventMs,
		PassengerCount:     facts.PassengerCount.V,
		HasPassengerCount:  facts.PassengerCount.Valid,
		DistanceHundredths: facts.DistanceHundredths,
		TipCents:           facts.TipCents,
		FareCents:          facts.FareCents,
		TotalCents:         facts.TotalCents,
	}
	borough := s.borough(ctx, st, facts.PULocationID)
	st.windows = s.cfg.Window.Windows(facts.EventMs, st.windows[:0])
	for _, w := range st.windows {
		st.combiner.Add(w, borough, ride)
	}
	s.Counters.OnTime.Add(1)
	st.tracker.ObserveEvent(facts.EventMs)
	s.maybeRequestCommit(ctx, st)
}

// borough joins a pickup zone to its borough through the zone table (a goka view of
// every partition, updated live). The table is read as raw bytes and
// decoded here, so that a malformed zone record makes its rides count as Unknown
// (and is logged once per input partition) instead of stopping the processor.
func (s *Stage) borough(ctx goka.Context, st *partitionState, id int32) string {
	if s.versioned == nil || id < 0 || int(id) >= len(zoneKeys) {
		return s.lookupBorough(ctx, st, id)
	}
	if v := s.versioned.Version(); st.boroughs == nil || v != st.zonesVersion {
		// Read before the lookups it covers: a change during them moves it again.
		if st.boroughs == nil {
			st.boroughs = make([]string, len(zoneKeys))
		} else {
			clear(st.boroughs)
		}
		st.zonesVersion = v
	}
	if b := st.boroughs[id]; b != "" {
		return b
	}
	b := s.lookupBorough(ctx, st, id)
	st.boroughs[id] = b
	return b
}

// lookupBorough reads the borough of a LocationID from the zone table.
func (s *Stage) lookupBorough(ctx goka.Context, st *partitionState, id int32) string {
	raw, err := s.cfg.Zones.Get(zoneKey(id))
	if err != nil {
		// A storage error of the table: fail the callback (the stage restarts from
		// its last commit) rather than count the ride under the wrong borough.
		ctx.Fail(fmt.Errorf("ingest: zone lookup of %d: %w", id, err))
		return UnknownBorough // not reached: Fail panics out of the callback
	}
	if len(raw) == 0 {
		return UnknownBorough
	}
	if b, ok := st.zoneCache[string(raw)]; ok { // a map index by string(bytes) does not allocate
		return b
	}
	borough := UnknownBorough
	if z, err := codecs.DecodeZone(raw); err != nil {
		s.cfg.Logger.Warn("malformed zone record; its rides count as Unknown", "location_id", id, "err", err)
	} else if z.Borough != "" {
		borough = z.Borough
	}
	if st.zoneCache == nil {
		st.zoneCache = map[string]string{}
	}
	st.zoneCache[string(raw)] = borough
	return borough
}

// zoneKeys avoids formatting the common LocationIDs on every ride.
var zoneKeys = func() [512]string {
	var k [512]string
	for i := range k {
		k[i] = strconv.Itoa(i)
	}
	return k
}()

func zoneKey(id int32) string {
	if id >= 0 && int(id) < len(zoneKeys) {
		return zoneKeys[id]
	}
	return strconv.Itoa(int(id))
}

func (s *Stage) dead(ctx goka.Context, raw []byte, reason string) {
	s.Counters.Dead.Add(1)
	ctx.Emit(s.cfg.DeadTopic, ctx.Key(), raw, goka.WithCtxEmitHeaders(s.inputHeaders(ctx, goka.Headers{
		codecs.HeaderDeadReason: []byte(reason),
	})))
}

func (s *Stage) inputHeaders(ctx goka.Context, h goka.Headers) goka.Headers {
	if v, ok := ctx.Headers()[eos.HeaderNullKey]; ok {
		h[eos.HeaderNullKey] = v // the record keeps its null key (eos)
	}
	if s.cfg.App != "" {
		h[codecs.HeaderApp] = []byte(s.cfg.App)
	}
	h[codecs.HeaderInputTopic] = []byte(ctx.Topic())
	h[codecs.HeaderInputPartition] = []byte(strconv.Itoa(int(ctx.Partition())))
	h[codecs.HeaderInputOffset] = []byte(strconv.FormatInt(ctx.Offset(), 10))
	return h
}

// maybeRequestCommit asks for an early commit when the watermark has passed a
// window end since the last flush: a window may close now.
func (s *Stage) maybeRequestCommit(ctx goka.Context, st *partitionState) {
	wm, ok := st.tracker.Watermark()
	if !ok {
		return
	}
	slide := s.cfg.Window.Slide.Milliseconds()
	if !st.sentHasWM || floorDiv(wm, slide) > floorDiv(st.sentWM, slide) {
		s.committer.RequestCommit()
	}
	if s.cfg.WatermarkPassed != nil && (!st.passedHas || floorDiv(wm, slide) > floorDiv(st.passedWM, slide)) {
		st.passedWM, st.passedHas = wm, true
		s.cfg.WatermarkPassed(ctx.Partition(), wm)
	}
}

// subSat returns a−b for b >= 0, saturating at math.MinInt64.
func subSat(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}

func floorDiv(a, b int64) int64 {
	if a == watermark.Closed {
		return a
	}
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Hooks returns the commit-cycle hooks of this stage.
func (s *Stage) Hooks() eos.Hooks {
	return eos.Hooks{Assigned: s.assigned, Flush: s.flush, Revoked: s.revoked}
}

// metadataPrefix versions the offset metadata format.
const metadataPrefix = "wm1:"

func (s *Stage) assigned(_ context.Context, claims map[string][]int32, meta map[eos.TopicPartition]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parts = map[int32]*partitionState{}
	for _, p := range claims[s.cfg.RidesTopic] {
		tr := watermark.MustNew(s.cfg.Watermark)
		if md := meta[eos.TopicPartition{Topic: s.cfg.RidesTopic, Partition: p}]; md != "" {
			if err := restoreTracker(tr, md); err != nil {
				return fmt.Errorf("ingest: partition %d: committed watermark state: %w", p, err)
			}
		}
		s.parts[p] = &partitionState{tracker: tr}
		wm, ok := tr.Watermark()
		s.cfg.Logger.Info("ingest partition assigned", "partition", p, "restored", meta[eos.TopicPartition{Topic: s.cfg.RidesTopic, Partition: p}] != "", "watermark", wm, "has_watermark", ok, "mode", tr.Mode().String())
	}
	return nil
}

func restoreTracker(tr *watermark.Tracker, md string) error {
	if len(md) < len(metadataPrefix) || md[:len(metadataPrefix)] != metadataPrefix {
		return errors.New("unknown metadata format")
	}
	snap, err := base64.RawStdEncoding.DecodeString(md[len(metadataPrefix):])
	if err != nil {
		return err
	}
	return tr.UnmarshalBinary(snap)
}

func (s *Stage) revoked() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parts = map[int32]*partitionState{}
}

// flush sends every partition's partial sums and watermark to the windows stage and
// returns the trackers to commit with the offsets.
func (s *Stage) flush(send func(*sarama.ProducerMessage)) (map[eos.TopicPartition]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.IdleTimeout > 0 {
		s.detectIdle()
	}
	meta := make(map[eos.TopicPartition]string, len(s.parts))
	byWindowsPartition := make([][]aggregate.Entry, s.cfg.WindowsPartitions)
	var entries []aggregate.Entry
	for _, p := range slices.Sorted(mapsKeys(s.parts)) {
		st := s.parts[p]
		entries = st.combiner.Flush(entries[:0])
		for q := range byWindowsPartition {
			byWindowsPartition[q] = byWindowsPartition[q][:0]
		}
		for _, e := range entries {
			q := WindowPartition(e.Window, s.cfg.Window, s.cfg.WindowsPartitions)
			byWindowsPartition[q] = append(byWindowsPartition[q], e)
		}
		wm, hasWM := st.tracker.Watermark()
		wmChanged := hasWM && (!st.sentHasWM || wm != st.sentWM)
		for q, es := range byWindowsPartition {
			if len(es) == 0 && !wmChanged {
				continue
			}
			partial := aggregate.Partial{Partition: p, Watermark: wm, HasWatermark: hasWM, Entries: es}
			value, err := partial.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("encode partial of partition %d: %w", p, err)
			}
			send(&sarama.ProducerMessage{
				Topic:   s.cfg.WindowsTopic,
				Key:     sarama.StringEncoder(s.windowKeys[q]),
				Value:   sarama.ByteEncoder(value),
				Headers: s.partialHeaders,
			})
		}
		st.sentWM, st.sentHasWM = wm, hasWM
		snap, err := st.tracker.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("encode watermark state of partition %d: %w", p, err)
		}
		meta[eos.TopicPartition{Topic: s.cfg.RidesTopic, Partition: p}] = metadataPrefix + base64.RawStdEncoding.EncodeToString(snap)
	}
	return meta, nil
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Watermarks returns each assigned partition's watermark as of the last commit
// (for metrics; safe to call at any time).
func (s *Stage) Watermarks() map[int32]watermark.Mark {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int32]watermark.Mark, len(s.parts))
	for p, st := range s.parts {
		out[p] = watermark.Mark{Ms: st.sentWM, OK: st.sentHasWM}
	}
	return out
}
