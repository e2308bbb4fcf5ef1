package synth

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Generator produces the rows of one Config. It is immutable after New and safe for concurrent
// use; every method call starts from the seed again.
//
// How it works: the nominal pickup range is cut into hours ("slots"). Each slot gets its number
// of rows from the hour-of-day and day-of-week profiles times a per-day noise factor (cumulative
// rounding, so the counts add up to Config.Rows exactly), and its null-block share. Every row has
// its own PCG stream, seeded from a key derived from (seed, slot, block, index); the key's top
// bits are its nominal pickup second. So a row's content does not depend on the order option or
// on any other row: OrderSorted and OrderTLC hold the same rows in different orders, and sorting
// an hour needs only the keys.
type Generator struct {
	cfg   Config
	slots []slot

	pu, do         aliasTable
	congestionZone [266]bool
	cbdZone        [266]bool

	passengers      catTable
	payments        catTable
	streetRates     catTable
	negotiatedFares catTable
	tipPercents     catTable

	durationMu [24]float64 // ln(median duration in minutes) by hour
	speedMu    [24]float64 // ln(median speed in mph) by hour

	th        thresholds
	outlierTh uint64 // threshold(cfg.OutlierRate)
	farFuture int64  // end of the nominal range
}

// thresholds are the fixed shares of tables.go as comparison bounds (see threshold).
type thresholds struct {
	vendor2, vendor2NullBlock, storeAndFwd, dispatch, tripTypeNull uint64
	zeroDistance, zeroDuration, sameZone, mtaHigh, cardTip         uint64
	nullBlockTip, tollLong, tollShort                              uint64
}

func newThresholds() thresholds {
	return thresholds{
		vendor2:          threshold(vendor2Share),
		vendor2NullBlock: threshold(vendor2ShareNullBlock),
		storeAndFwd:      threshold(storeAndFwdShareV1),
		dispatch:         threshold(dispatchShare),
		tripTypeNull:     threshold(tripTypeNullShare),
		zeroDistance:     threshold(zeroDistanceShare),
		zeroDuration:     threshold(zeroDurationShare),
		sameZone:         threshold(sameZoneShare),
		mtaHigh:          threshold(mtaHighShare),
		cardTip:          threshold(cardTipShare),
		nullBlockTip:     threshold(nullBlockTipShare),
		tollLong:         threshold(tollLongShare),
		tollShort:        threshold(tollShortShare),
	}
}

// slot is one hour of the nominal pickup range.
type slot struct {
	start       int64 // wall-clock Unix seconds of the hour's start
	rows        int32 // rows with a pickup in this hour, null block included
	null        int32 // rows of the null block
	hour        uint8
	rush        bool  // weekday 16:00–20:00
	congestion  bool  // congestion surcharge in force (since 2019-02-02)
	cbd         bool  // CBD congestion fee in force (since 2025-01-05)
	improvement int64 // improvement_surcharge in cents
}

// Dates on which surcharges changed, and the far-past outlier day (wall clock, Unix seconds;
// checked against time.Date in TestDateConstants).
const (
	congestionSince  = 1549065600 // 2019-02-02
	cbdSince         = 1736035200 // 2025-01-05
	improvementSince = 1671408000 // 2022-12-19
	farPastDay       = 1230768000 // 2009-01-01
)

// New validates cfg and prepares the tables.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		cfg:             cfg,
		passengers:      newCatTable(passengerChoices),
		payments:        newCatTable(paymentChoices),
		streetRates:     newCatTable(streetRateChoices),
		negotiatedFares: newCatTable(negotiatedFareChoices),
		tipPercents:     newCatTable(tipPercentChoices),
		th:              newThresholds(),
		outlierTh:       threshold(cfg.OutlierRate),
		farFuture:       cfg.rangeEnd(),
	}
	g.pu = newAliasTable(zoneWeights(puCount[:]))
	g.do = newAliasTable(zoneWeights(doCount[:]))
	for _, z := range congestionZones {
		g.congestionZone[z] = true
	}
	for _, z := range cbdZones {
		g.cbdZone[z] = true
	}
	for h := range 24 {
		g.durationMu[h] = math.Log(durationMedianMin[h])
		g.speedMu[h] = math.Log(speedMedianMph[h])
	}
	g.slots = planSlots(cfg)
	return g, nil
}

// Config returns the generator's configuration.
func (g *Generator) Config() Config { return g.cfg }

func zoneWeights(counts []float64) []float64 {
	w := make([]float64, len(counts))
	for i, c := range counts {
		w[i] = max(c, zoneFloor)
	}
	return w
}

// planSlots cuts the range into hours and gives each its row counts. Counts come from cumulative
// rounding of the weight prefix sums, so they add up to cfg.Rows exactly and equal Configs give
// equal plans.
func planSlots(cfg Config) []slot {
	start, end := cfg.rangeStart(), cfg.rangeEnd()
	n := int((end - start) / 3600)
	slots := make([]slot, n)
	weights := make([]float64, n)
	// Day-to-day variation (weather, events): the real files' same-weekday counts vary by
	// about 5 %; a per-day log-normal factor from its own stream of the seed reproduces that.
	dayNoise := make([]float64, (n+23)/24)
	noise := rand.New(rand.NewPCG(cfg.Seed, splitmix64(cfg.Seed^0x5851F42D4C957F2D)))
	for d := range dayNoise {
		dayNoise[d] = math.Exp(dayNoiseSigma * noise.NormFloat64())
	}
	var total float64
	for i := range slots {
		s := &slots[i]
		s.start = start + int64(i)*3600
		t := time.Unix(s.start, 0).UTC()
		wd := t.Weekday()
		s.hour = uint8(t.Hour())
		weekend := wd == time.Saturday || wd == time.Sunday
		s.rush = !weekend && s.hour >= 16 && s.hour < 20
		s.congestion = s.start >= congestionSince
		s.cbd = s.start >= cbdSince
		s.improvement = improvementOldCts
		if s.start >= improvementSince {
			s.improvement = improvementCents
		}
		profile := &hourShareWeekday
		if weekend {
			profile = &hourShareWeekend
		}
		weights[i] = dayWeight[wd] * dayNoise[(s.start-start)/86400] * profile[s.hour]
		total += weights[i]
	}
	nullRows := math.Round(float64(cfg.Rows) * cfg.NullFraction)
	var acc float64
	var prevAll, prevNull int64
	for i := range slots {
		acc += weights[i]
		share := acc / total
		if i == n-1 {
			share = 1
		}
		all := int64(math.Round(float64(cfg.Rows) * share))
		null := int64(math.Round(nullRows * share))
		slots[i].rows = int32(all - prevAll)
		slots[i].null = int32(min(null-prevNull, all-prevAll))
		prevAll, prevNull = all, null
	}
	return slots
}

// batchRows is the size of the batches handed to Generate's callback: large enough that the
// per-call overhead of the Parquet writer vanishes, small enough to stay in L2-ish memory.
const batchRows = 16 << 10

// Generate calls emit with consecutive batches of rows in file order until Config.Rows rows were
// produced, ctx is done or emit fails. Batches hold at most 16384 rows; the batch is reused after
// emit returns, so copy what you keep. Memory does not grow with Config.Rows (sorted order keeps
// 16 bytes per row of the current hour).
func (g *Generator) Generate(ctx context.Context, emit func(batch []Ride) error) error {
	w := g.newSlotGen()
	batch := make([]Ride, batchRows)
	n := 0
	add := func(s *slot, ref rowRef) error {
		w.ride(&batch[n], s, ref)
		n++
		if n < batchRows {
			return nil
		}
		n = 0
		return emit(batch)
	}
	passes := 1
	if g.cfg.Order == OrderTLC {
		passes = 2
	}
	for pass := range passes {
		for i := range g.slots {
			if i%64 == 0 {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("synth: generating hour %d of the range: %w", i, err)
				}
			}
			s := &g.slots[i]
			if g.cfg.Order == OrderSorted {
				for _, ref := range w.sortedRefs(i) {
					if err := add(s, ref); err != nil {
						return err
					}
				}
				continue
			}
			// TLC order: the rows of a block in index order. Their nominal pickups are
			// independent uniform seconds of the hour, so this is "grouped by hour, shuffled
			// inside the hour".
			block, count := uint32(blockMain), s.rows-s.null
			if pass == 1 {
				block, count = blockNull, s.null
			}
			for idx := range uint32(count) {
				if err := add(s, w.ref(i, block, idx)); err != nil {
					return err
				}
			}
		}
	}
	if n > 0 {
		return emit(batch[:n])
	}
	return nil
}

// Rides returns all rows in file order. It holds them all in memory (about 150 bytes a row);
// use Generate for large Configs.
func (g *Generator) Rides(ctx context.Context) ([]Ride, error) {
	rides := make([]Ride, 0, g.cfg.Rows)
	err := g.Generate(ctx, func(batch []Ride) error {
		rides = append(rides, batch...)
		return nil
	})
	return rides, err
}

// Rides is a shortcut for New(cfg) and Generator.Rides.
func Rides(ctx context.Context, cfg Config) ([]Ride, error) {
	g, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return g.Rides(ctx)
}

const (
	blockMain = 0
	blockNull = 1
)

// rowRef identifies one row: a 64-bit key derived from (seed, slot, block, index) that seeds the
// row's own random stream. Its top 32 bits give the nominal second in the hour; its lowest bit
// is the block (1 = null block).
type rowRef uint64

// offset is the row's nominal pickup second in its hour, 0..3599.
func (r rowRef) offset() uint16 { return uint16((uint64(r) >> 32) * 3600 >> 32) }

func (r rowRef) null() bool { return r&1 == blockNull }

// slotGen generates rows; it owns the random stream and the sort scratch space.
type slotGen struct {
	g      *Generator
	pcg    *rand.PCG
	rnd    *rand.Rand
	refs   []rowRef
	sorted []rowRef
	counts [3601]int32
}

func (g *Generator) newSlotGen() *slotGen {
	pcg := rand.NewPCG(0, 0)
	return &slotGen{g: g, pcg: pcg, rnd: rand.New(pcg)}
}

func (w *slotGen) ref(slotIndex int, block, idx uint32) rowRef {
	base := splitmix64(w.g.cfg.Seed ^ splitmix64(uint64(slotIndex)<<1|uint64(block)))
	return rowRef(splitmix64(base+uint64(idx)*0x9E3779B97F4A7C15)&^1 | uint64(block))
}

// sortedRefs returns the rows of slot i, both blocks, ordered by nominal pickup second; ties
// keep the main block first and index order (stable).
func (w *slotGen) sortedRefs(slotIndex int) []rowRef {
	s := &w.g.slots[slotIndex]
	w.refs = w.refs[:0]
	for idx := range uint32(s.rows - s.null) {
		w.refs = append(w.refs, w.ref(slotIndex, blockMain, idx))
	}
	for idx := range uint32(s.null) {
		w.refs = append(w.refs, w.ref(slotIndex, blockNull, idx))
	}
	if len(w.refs) < 256 {
		// Small hours (tiny or long-range Configs): an insertion sort beats clearing the
		// 3601 counters.
		refs := w.refs
		for i := 1; i < len(refs); i++ {
			for j := i; j > 0 && refs[j].offset() < refs[j-1].offset(); j-- {
				refs[j], refs[j-1] = refs[j-1], refs[j]
			}
		}
		return refs
	}
	counts := &w.counts
	*counts = [3601]int32{}
	for _, r := range w.refs {
		counts[r.offset()+1]++
	}
	for i := 1; i < len(counts); i++ {
		counts[i] += counts[i-1]
	}
	w.sorted = slices.Grow(w.sorted[:0], len(w.refs))[:len(w.refs)]
	for _, r := range w.refs {
		o := r.offset()
		w.sorted[counts[o]] = r
		counts[o]++
	}
	return w.sorted
}

// chance reports true with the probability th was made from (see threshold).
func (w *slotGen) chance(th uint64) bool { return w.pcg.Uint64()>>11 < th }

// ride fills r with the trip ref of slot s. Its content depends only on the key, that is on
// (seed, slot, block, index in the block), never on the order option. Turning outliers on or off
// changes only the outlier rows: the outlier decision is the row's last draw, and the
// displacement is derived from the same value.
//
// Hot path: called once per row; no allocation, about 20 draws from the row's PCG stream.
func (w *slotGen) ride(r *Ride, s *slot, ref rowRef) {
	g, p, rnd := w.g, w.pcg, w.rnd
	p.Seed(uint64(ref), splitmix64(uint64(ref)^0x6A09E667F3BCC909))
	nullBlock := ref.null()
	pickup := s.start + int64(ref.offset())
	*r = Ride{NullBlock: nullBlock}

	// Vendor and street/dispatch.
	r.VendorID = 1
	vendor2 := g.th.vendor2
	if nullBlock {
		vendor2 = g.th.vendor2NullBlock
	}
	if w.chance(vendor2) {
		r.VendorID = 2
	}
	if r.VendorID == 1 && !nullBlock && w.chance(g.th.storeAndFwd) {
		r.StoreAndFwd = true
	}
	dispatch := false
	if !nullBlock {
		dispatch = w.chance(g.th.dispatch)
		r.TripType = 1
		if dispatch {
			r.TripType = 2
		}
		r.TripTypeNull = w.chance(g.th.tripTypeNull)
		if r.TripTypeNull {
			r.TripType = 0
		}
		r.RatecodeID = 5
		if !dispatch {
			r.RatecodeID = g.streetRates.sample(p.Uint64())
		}
		r.PassengerCount = g.passengers.sample(p.Uint64())
		r.PaymentType = g.payments.sample(p.Uint64())
	}

	// Zones.
	r.PULocationID = int32(g.pu.sample(p.Uint64())) + 1
	if w.chance(g.th.sameZone) {
		r.DOLocationID = r.PULocationID
	} else {
		r.DOLocationID = int32(g.do.sample(p.Uint64())) + 1
	}

	// Duration (log-normal around the hour's median) and distance (duration × log-normal speed).
	minutes := math.Exp(g.durationMu[s.hour] + durationSigma*rnd.NormFloat64())
	seconds := int64(math.Round(min(minutes, maxDurationMin) * 60))
	if w.chance(g.th.zeroDuration) {
		seconds = 0
	}
	speed := math.Exp(g.speedMu[s.hour] + speedSigma*rnd.NormFloat64())
	if !w.chance(g.th.zeroDistance) {
		r.DistanceHundredths = int64(math.Round(speed * float64(seconds) / 36))
	}

	// Fare.
	meter := func() int64 {
		miles := float64(r.DistanceHundredths) / 100
		ticks := math.Round((meterPerMile*miles + meterPerMinute*float64(seconds)/60) / (meterTickCents / 100.0))
		return meterBaseCents + meterTickCents*int64(ticks)
	}
	switch r.RatecodeID {
	case 2:
		r.FareCents = jfkFlatCents
	case 3:
		r.FareCents = meter() + newarkExtraCents
	case 5:
		r.FareCents = g.negotiatedFares.sample(p.Uint64())
	default: // 1, 4, 6, 99 and the null block
		r.FareCents = meter()
	}

	// Surcharges.
	if !nullBlock && !dispatch {
		switch {
		case s.hour >= 20 || s.hour < 6:
			r.ExtraCents = overnightCents
		case s.rush:
			r.ExtraCents = rushHourCents
		}
	}
	switch {
	case nullBlock:
		r.MTATaxCents = mtaCents
	case dispatch:
	case w.chance(g.th.mtaHigh):
		r.MTATaxCents = mtaHighCents
	default:
		r.MTATaxCents = mtaCents
	}
	r.ImprovementCents = s.improvement
	th := g.th.tollShort
	if r.DistanceHundredths > tollLongHundredths {
		th = g.th.tollLong
	}
	if w.chance(th) {
		r.TollsCents = tollCents
	}
	if !nullBlock {
		if s.congestion && g.congestionZone[r.DOLocationID] {
			r.CongestionCents = congestionCents
		}
		if s.cbd && g.cbdZone[r.DOLocationID] {
			r.CBDCents = cbdFeeCents
		}
	}

	// Tip: card trips and most null-block trips, as a share of the pre-tip amount.
	u := p.Uint64()
	tipped := false
	switch {
	case nullBlock:
		tipped = u>>11 < g.th.nullBlockTip
	case r.PaymentType == 1:
		tipped = u>>11 < g.th.cardTip
	}
	if tipped {
		base := r.FareCents + r.ExtraCents + r.MTATaxCents + r.ImprovementCents + r.CongestionCents + r.CBDCents
		share := float64(g.tipPercents.sample(p.Uint64())) / 100
		if share == 0 { // a custom amount
			share = 0.05 + 0.30*rnd.Float64()
		}
		r.TipCents = int64(math.Round(float64(base) * share))
	}
	r.TotalCents = r.SumCents()

	// Timestamps and outliers.
	dropoff := pickup + seconds
	u = p.Uint64()
	if u>>11 < g.outlierTh {
		v := splitmix64(u)
		switch kind := OutlierKind(1 + (v&0xFFFFFFFF)*3>>32); kind {
		case OutlierFarPast:
			pickup = farPastDay + int64((v>>32)%86400)
			dropoff = pickup + seconds
			r.Outlier = kind
		case OutlierFarFuture:
			pickup = g.farFuture + 86400 + int64((v>>32)%(364*86400))
			dropoff = pickup + seconds
			r.Outlier = kind
		case OutlierReversed:
			dropoff = pickup - 1 - int64((v>>32)%3600)
			r.Outlier = kind
		}
	}
	r.PickupMicros = pickup * 1e6
	r.DropoffMicros = dropoff * 1e6
}
