package synth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

func mustRides(t *testing.T, cfg Config) []Ride {
	t.Helper()
	rides, err := Rides(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(rides)) != cfg.Rows {
		t.Fatalf("got %d rides, Config.Rows = %d", len(rides), cfg.Rows)
	}
	return rides
}

func readRows(t *testing.T, data []byte) []parquetRow {
	t.Helper()
	rows, err := parquet.Read[parquetRow](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("reading generated Parquet back: %v", err)
	}
	return rows
}

// cents converts a DOUBLE dollar value read back to cents, failing on values that are not
// finite or not a whole number of cents.
func cents(t *testing.T, row int, column string, v *float64) int64 {
	t.Helper()
	if v == nil {
		t.Fatalf("row %d: %s is null", row, column)
	}
	if math.IsNaN(*v) || math.IsInf(*v, 0) {
		t.Fatalf("row %d: %s = %v is not finite", row, column, *v)
	}
	c := math.Round(*v * 100)
	if math.Abs(c-*v*100) > 1e-6 {
		t.Fatalf("row %d: %s = %v is not a whole number of cents", row, column, *v)
	}
	return int64(c)
}

// TestReadBackEqualsRides writes a file and reads it back with parquet-go: every value and every
// null must be what the in-memory API produced, money exact to the cent.
func TestReadBackEqualsRides(t *testing.T) {
	for _, order := range []Order{OrderSorted, OrderTLC} {
		t.Run(string(order), func(t *testing.T) {
			cfg := DefaultConfig(30_000)
			cfg.Order = order
			cfg.OutlierRate = 1e-3
			cfg.RowGroupRows = 4096 // several row groups
			rides := mustRides(t, cfg)
			data, st := writeToBuffer(t, cfg)
			rows := readRows(t, data)
			if len(rows) != len(rides) || st.Rows != int64(len(rides)) {
				t.Fatalf("file has %d rows, Stats.Rows %d, in-memory %d", len(rows), st.Rows, len(rides))
			}
			var outliers, nullRows int64
			for i := range rows {
				got, want := &rows[i], &rides[i]
				if want.Outlier != OutlierNone {
					outliers++
				}
				if want.NullBlock {
					nullRows++
				}
				checkRow(t, i, got, want)
			}
			if outliers != st.Outliers || nullRows != st.NullRows {
				t.Errorf("Stats outliers/null rows = %d/%d, counted %d/%d", st.Outliers, st.NullRows, outliers, nullRows)
			}
		})
	}
}

func checkRow(t *testing.T, i int, got *parquetRow, want *Ride) {
	t.Helper()
	eqInt := func(column string, p *int64, w int64, null bool) {
		t.Helper()
		switch {
		case null && p != nil:
			t.Fatalf("row %d: %s = %d, want null", i, column, *p)
		case !null && p == nil:
			t.Fatalf("row %d: %s is null, want %d", i, column, w)
		case !null && *p != w:
			t.Fatalf("row %d: %s = %d, want %d", i, column, *p, w)
		}
	}
	eq32 := func(column string, p *int32, w int32) {
		t.Helper()
		if p == nil || *p != w {
			t.Fatalf("row %d: %s = %v, want %d", i, column, p, w)
		}
	}
	eqMoney := func(column string, p *float64, w int64, null bool) {
		t.Helper()
		if null {
			if p != nil {
				t.Fatalf("row %d: %s = %v, want null", i, column, *p)
			}
			return
		}
		if c := cents(t, i, column, p); c != w {
			t.Fatalf("row %d: %s = %d cents, want %d", i, column, c, w)
		}
	}
	nb := want.NullBlock
	eq32("VendorID", got.VendorID, want.VendorID)
	eqInt("lpep_pickup_datetime", got.PickupDatetime, want.PickupMicros, false)
	eqInt("lpep_dropoff_datetime", got.DropoffDatetime, want.DropoffMicros, false)
	switch {
	case nb && got.StoreAndFwdFlag != nil:
		t.Fatalf("row %d: store_and_fwd_flag = %q in the null block", i, *got.StoreAndFwdFlag)
	case !nb && (got.StoreAndFwdFlag == nil || (*got.StoreAndFwdFlag == "Y") != want.StoreAndFwd ||
		(*got.StoreAndFwdFlag != "Y" && *got.StoreAndFwdFlag != "N")):
		t.Fatalf("row %d: store_and_fwd_flag = %v, want StoreAndFwd=%v", i, got.StoreAndFwdFlag, want.StoreAndFwd)
	}
	eqInt("RatecodeID", got.RatecodeID, want.RatecodeID, nb)
	eq32("PULocationID", got.PULocationID, want.PULocationID)
	eq32("DOLocationID", got.DOLocationID, want.DOLocationID)
	eqInt("passenger_count", got.PassengerCount, want.PassengerCount, nb)
	eqMoney("trip_distance", got.TripDistance, want.DistanceHundredths, false)
	eqMoney("fare_amount", got.FareAmount, want.FareCents, false)
	eqMoney("extra", got.Extra, want.ExtraCents, false)
	eqMoney("mta_tax", got.MTATax, want.MTATaxCents, false)
	eqMoney("tip_amount", got.TipAmount, want.TipCents, false)
	eqMoney("tolls_amount", got.TollsAmount, want.TollsCents, false)
	eqMoney("ehail_fee", got.EhailFee, 0, true)
	eqMoney("improvement_surcharge", got.ImprovementSurcharge, want.ImprovementCents, false)
	eqMoney("total_amount", got.TotalAmount, want.TotalCents, false)
	eqInt("payment_type", got.PaymentType, want.PaymentType, nb)
	eqInt("trip_type", got.TripType, want.TripType, nb || want.TripTypeNull)
	eqMoney("congestion_surcharge", got.CongestionSurcharge, want.CongestionCents, nb)
	eqMoney("cbd_congestion_fee", got.CBDCongestionFee, want.CBDCents, nb)

	// total_amount is the sum of the components read from the file, exactly in cents.
	sum := cents(t, i, "fare_amount", got.FareAmount) + cents(t, i, "extra", got.Extra) +
		cents(t, i, "mta_tax", got.MTATax) + cents(t, i, "tip_amount", got.TipAmount) +
		cents(t, i, "tolls_amount", got.TollsAmount) + cents(t, i, "improvement_surcharge", got.ImprovementSurcharge)
	if !nb {
		sum += cents(t, i, "congestion_surcharge", got.CongestionSurcharge) + cents(t, i, "cbd_congestion_fee", got.CBDCongestionFee)
	}
	if total := cents(t, i, "total_amount", got.TotalAmount); total != sum {
		t.Fatalf("row %d: total_amount %d cents != sum of components %d", i, total, sum)
	}
}

// TestDeterministic: the same Config gives byte-identical files, whatever the number of encoder
// workers; another seed gives another file.
func TestDeterministic(t *testing.T) {
	for _, order := range []Order{OrderSorted, OrderTLC} {
		t.Run(string(order), func(t *testing.T) {
			// Several batches (16384 rows) and row groups; small enough for -race.
			cfg := DefaultConfig(60_000)
			cfg.Order = order
			cfg.RowGroupRows = 20_000
			hash := func(cfg Config) [32]byte {
				data, _ := writeToBuffer(t, cfg)
				return sha256.Sum256(data)
			}
			first := hash(cfg)
			if second := hash(cfg); second != first {
				t.Fatalf("two runs of the same Config differ: %x vs %x", first, second)
			}
			prev := runtime.GOMAXPROCS(1)
			single := hash(cfg)
			runtime.GOMAXPROCS(prev)
			if single != first {
				t.Errorf("GOMAXPROCS=1 gives another file: %x vs %x", single, first)
			}
			other := cfg
			other.Seed++
			if hash(other) == first {
				t.Errorf("seeds %d and %d give the same file", cfg.Seed, other.Seed)
			}
		})
	}
}

// TestOrdersHoldSameRows: sorted and TLC order are permutations of the same rows.
func TestOrdersHoldSameRows(t *testing.T) {
	cfg := DefaultConfig(50_000)
	cfg.OutlierRate = 1e-3
	sorted := mustRides(t, cfg)
	cfg.Order = OrderTLC
	tlc := mustRides(t, cfg)
	count := make(map[Ride]int, len(sorted))
	for _, r := range sorted {
		count[r]++
	}
	for i, r := range tlc {
		if count[r] == 0 {
			t.Fatalf("TLC row %d does not occur in the sorted rows: %+v", i, r)
		}
		count[r]--
	}
	if equal := func() bool {
		for i := range sorted {
			if sorted[i] != tlc[i] {
				return false
			}
		}
		return true
	}(); equal {
		t.Error("sorted and TLC order are identical")
	}
}

// nominalOK reports whether r keeps its generated timestamps (not displaced to the far past or
// future).
func nominalOK(r *Ride) bool { return r.Outlier == OutlierNone || r.Outlier == OutlierReversed }

func TestSortedOrder(t *testing.T) {
	cfg := DefaultConfig(100_000)
	cfg.OutlierRate = 1e-3
	rides := mustRides(t, cfg)
	var last int64
	for i := range rides {
		r := &rides[i]
		if !nominalOK(r) {
			continue
		}
		if r.PickupMicros < last {
			t.Fatalf("row %d: pickup %s before the previous %s", i, micros(r.PickupMicros), micros(last))
		}
		last = r.PickupMicros
	}
}

func micros(us int64) string { return time.UnixMicro(us).UTC().Format(time.DateTime) }

// TestTLCOrder checks SOURCES.md's layout: the main block grouped by hour and shuffled inside
// the hour, then the null block starting again at the beginning of the month.
func TestTLCOrder(t *testing.T) {
	cfg := DefaultConfig(100_000)
	cfg.Order = OrderTLC
	rides := mustRides(t, cfg)
	firstNull := -1
	for i := range rides {
		if rides[i].NullBlock && firstNull < 0 {
			firstNull = i
		}
		if !rides[i].NullBlock && firstNull >= 0 {
			t.Fatalf("main-block row %d after the null block started at %d", i, firstNull)
		}
	}
	if want := int(math.Round(float64(cfg.Rows) * cfg.NullFraction)); len(rides)-firstNull != want {
		t.Errorf("null block has %d rows, want %d", len(rides)-firstNull, want)
	}
	for _, block := range [][]Ride{rides[:firstNull], rides[firstNull:]} {
		var maxSeen, inversions int64
		for i := range block {
			r := &block[i]
			if !nominalOK(r) {
				continue
			}
			hour := r.PickupMicros / 3600e6
			if maxSeen/3600e6 > hour {
				t.Fatalf("row of hour %s after hour %s", micros(r.PickupMicros), micros(maxSeen))
			}
			if r.PickupMicros < maxSeen {
				inversions++
			}
			maxSeen = max(maxSeen, r.PickupMicros)
		}
		if inversions < int64(len(block))/4 {
			t.Errorf("only %d of %d rows arrive after a later pickup: not shuffled inside the hour", inversions, len(block))
		}
	}
	if start := rides[firstNull].PickupMicros; start >= cfg.Month.Add(2*time.Hour).UnixMicro() {
		t.Errorf("null block starts at %s, want the start of the month", micros(start))
	}
}

// TestStatistics checks the realism claims of the package doc on 400k rows.
func TestStatistics(t *testing.T) {
	cfg := DefaultConfig(400_000)
	cfg.Seed = 7
	rides := mustRides(t, cfg)
	n := float64(len(rides))
	monthStart, monthEnd := cfg.Month.UnixMicro(), cfg.Month.AddDate(0, 1, 0).UnixMicro()

	var (
		nulls, zeroPassengers, card, cardTipped, cash, cashTipped, congestion, zeroDistance float64
		weekdayHour, weekendHour                                                            [24]float64
		dayRows                                                                             = map[int64]float64{}
		puRows                                                                              [266]float64
		sx, sy, sxx, syy, sxy, m                                                            float64
	)
	for i := range rides {
		r := &rides[i]
		if r.NullBlock {
			nulls++
		} else {
			if r.PassengerCount == 0 {
				zeroPassengers++
			}
			if r.CongestionCents > 0 {
				congestion++
			}
		}
		switch r.PaymentType {
		case 1:
			card++
			if r.TipCents > 0 {
				cardTipped++
			}
		case 2:
			cash++
			if r.TipCents > 0 {
				cashTipped++
			}
		}
		if r.DistanceHundredths == 0 {
			zeroDistance++
		}
		if r.TotalCents != r.SumCents() {
			t.Fatalf("row %d: total %d != sum %d", i, r.TotalCents, r.SumCents())
		}
		if r.PULocationID < 1 || r.PULocationID > 265 || r.DOLocationID < 1 || r.DOLocationID > 265 {
			t.Fatalf("row %d: PU/DO %d/%d outside 1..265", i, r.PULocationID, r.DOLocationID)
		}
		puRows[r.PULocationID]++
		if r.Outlier != OutlierNone {
			continue
		}
		if r.DropoffMicros < r.PickupMicros || r.DropoffMicros-r.PickupMicros > 24*3600e6 {
			t.Fatalf("row %d: pickup %s dropoff %s", i, micros(r.PickupMicros), micros(r.DropoffMicros))
		}
		if r.PickupMicros < monthStart || r.PickupMicros >= monthEnd {
			t.Fatalf("row %d: pickup %s outside the month", i, micros(r.PickupMicros))
		}
		pick := time.UnixMicro(r.PickupMicros).UTC()
		if wd := pick.Weekday(); wd == time.Saturday || wd == time.Sunday {
			weekendHour[pick.Hour()]++
		} else {
			weekdayHour[pick.Hour()]++
		}
		dayRows[r.PickupMicros/86400e6]++
		if r.DistanceHundredths > 0 && r.DropoffMicros > r.PickupMicros {
			x := math.Log(float64(r.DropoffMicros - r.PickupMicros))
			y := math.Log(float64(r.DistanceHundredths))
			sx, sy, sxx, syy, sxy, m = sx+x, sy+y, sxx+x*x, syy+y*y, sxy+x*y, m+1
		}
	}

	between := func(name string, got, lo, hi float64) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s = %.4f, want in [%g, %g]", name, got, lo, hi)
		}
	}
	between("null-block share", nulls/n, 0.05, 0.08)
	between("passenger_count 0 share", zeroPassengers/(n-nulls), 0.005, 0.03)
	between("card trips with a tip", cardTipped/card, 0.85, 0.91)
	between("cash trips with a tip", cashTipped/cash, 0, 0)
	between("congestion surcharge share", congestion/(n-nulls), 0.2, 0.4)
	between("zero-distance share", zeroDistance/n, 0.04, 0.06)
	corr := (m*sxy - sx*sy) / math.Sqrt((m*sxx-sx*sx)*(m*syy-sy*sy))
	between("corr(log duration, log distance)", corr, 0.6, 0.95)

	argmax, argmin := 0, 0
	for h := range weekdayHour {
		if weekdayHour[h] > weekdayHour[argmax] {
			argmax = h
		}
		if weekdayHour[h] < weekdayHour[argmin] {
			argmin = h
		}
	}
	if argmax < 16 || argmax > 18 {
		t.Errorf("weekday peak hour %d, want evening 16..18", argmax)
	}
	if argmin < 2 || argmin > 5 {
		t.Errorf("weekday trough hour %d, want night 2..5", argmin)
	}
	between("weekday peak/trough", weekdayHour[argmax]/weekdayHour[argmin], 10, 40)
	weekdayTotal, weekendTotal := 0.0, 0.0
	for h := range 24 {
		weekdayTotal += weekdayHour[h]
		weekendTotal += weekendHour[h]
	}
	between("weekend vs weekday share at 01:00", (weekendHour[1]/weekendTotal)/(weekdayHour[1]/weekdayTotal), 2, 4)
	// January 2025: 23 weekdays, 8 weekend days.
	between("weekday/weekend rows per day", (weekdayTotal/23)/(weekendTotal/8), 1.15, 1.6)
	if len(dayRows) != 31 {
		t.Errorf("rows on %d days, want 31", len(dayRows))
	}

	// Zone skew: East Harlem North/South (74, 75) alone carry about 40 % of the pickups.
	between("PULocationID 74+75 share", (puRows[74]+puRows[75])/n, 0.3, 0.5)
	seen := 0
	for _, c := range puRows {
		if c > 0 {
			seen++
		}
	}
	if seen < 200 {
		t.Errorf("only %d distinct PULocationIDs", seen)
	}
}

// TestOutliers: the configured rate is met, every kind occurs, and turning outliers off changes
// only the outlier rows' timestamps.
func TestOutliers(t *testing.T) {
	cfg := DefaultConfig(200_000)
	cfg.OutlierRate = 1e-3
	on := mustRides(t, cfg)
	cfg.OutlierRate = 0
	off := mustRides(t, cfg)
	kinds := map[OutlierKind]int{}
	end := cfg.Month.AddDate(0, cfg.Months, 0).UnixMicro()
	for i := range on {
		a, b := on[i], off[i]
		if b.Outlier != OutlierNone {
			t.Fatalf("row %d is an outlier with OutlierRate 0", i)
		}
		kinds[a.Outlier]++
		switch a.Outlier {
		case OutlierNone:
			if a != b {
				t.Fatalf("row %d differs without being an outlier:\n%+v\n%+v", i, a, b)
			}
			continue
		case OutlierFarPast:
			if y := time.UnixMicro(a.PickupMicros).UTC().Year(); y != 2009 {
				t.Errorf("row %d: far-past pickup in %d", i, y)
			}
		case OutlierFarFuture:
			if a.PickupMicros < end+86400e6 || a.PickupMicros > end+366*86400e6 {
				t.Errorf("row %d: far-future pickup %s", i, micros(a.PickupMicros))
			}
		case OutlierReversed:
			if a.DropoffMicros >= a.PickupMicros {
				t.Errorf("row %d: reversed outlier with dropoff %s >= pickup %s", i, micros(a.DropoffMicros), micros(a.PickupMicros))
			}
		}
		a.PickupMicros, a.DropoffMicros, a.Outlier = b.PickupMicros, b.DropoffMicros, OutlierNone
		if a != b {
			t.Fatalf("row %d: outlier differs in more than its timestamps", i)
		}
	}
	total := len(on) - kinds[OutlierNone]
	if total < 140 || total > 260 { // expected 200, Poisson sd 14
		t.Errorf("%d outliers in %d rows at rate %g", total, len(on), 1e-3)
	}
	for _, k := range []OutlierKind{OutlierFarPast, OutlierFarFuture, OutlierReversed} {
		if kinds[k] < 30 {
			t.Errorf("only %d %s outliers", kinds[k], k)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := DefaultConfig(10)
	if err := ok.Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for _, tc := range []struct {
		setting string
		mutate  func(*Config)
	}{
		{"Rows", func(c *Config) { c.Rows = 0 }},
		{"Rows", func(c *Config) { c.Rows = MaxRows + 1 }},
		{"Month", func(c *Config) { c.Month = c.Month.AddDate(0, 0, 1) }},
		{"Month", func(c *Config) { c.Month = time.Date(2025, 1, 1, 0, 0, 0, 0, time.Local) }},
		{"Month", func(c *Config) { c.Month = time.Time{} }},
		{"Month", func(c *Config) { c.Month = time.Date(2013, 7, 1, 0, 0, 0, 0, time.UTC) }},
		{"Months", func(c *Config) { c.Months = 0 }},
		{"Months", func(c *Config) { c.Months = 12 * 80 }},
		{"Order", func(c *Config) { c.Order = "random" }},
		{"NullFraction", func(c *Config) { c.NullFraction = -0.1 }},
		{"NullFraction", func(c *Config) { c.NullFraction = math.NaN() }},
		{"OutlierRate", func(c *Config) { c.OutlierRate = 0.5 }},
		{"Compression", func(c *Config) { c.Compression = "gzip" }},
		{"RowGroupRows", func(c *Config) { c.RowGroupRows = 10 }},
	} {
		cfg := ok
		tc.mutate(&cfg)
		err := cfg.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: Validate() = %v, want a *ConfigError", tc.setting, err)
			continue
		}
		if ce.Setting != tc.setting || !strings.Contains(err.Error(), "Config."+tc.setting) {
			t.Errorf("Validate() = %q, want it to name %s", err, tc.setting)
		}
		if _, err := New(cfg); !errors.As(err, &ce) {
			t.Errorf("New accepted a Config with a bad %s", tc.setting)
		}
	}
}

func TestParseMonth(t *testing.T) {
	m, err := ParseMonth("2024-02")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(1)
	cfg.Month = m
	if err := cfg.Validate(); err != nil {
		t.Errorf("ParseMonth result rejected: %v", err)
	}
	if _, err := ParseMonth("2024-2-1"); err == nil || !strings.Contains(err.Error(), "2024-2-1") {
		t.Errorf("ParseMonth(bad) = %v", err)
	}
}

func TestDateConstants(t *testing.T) {
	for _, tc := range []struct {
		got  int64
		want time.Time
	}{
		{congestionSince, time.Date(2019, 2, 2, 0, 0, 0, 0, time.UTC)},
		{cbdSince, time.Date(2025, 1, 5, 0, 0, 0, 0, time.UTC)},
		{improvementSince, time.Date(2022, 12, 19, 0, 0, 0, 0, time.UTC)},
		{farPastDay, time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC)},
		{firstMonth, time.Date(2013, 8, 1, 0, 0, 0, 0, time.UTC)},
		{lastMonthEnd, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if tc.got != tc.want.Unix() {
			t.Errorf("constant %d, want %d (%s)", tc.got, tc.want.Unix(), tc.want)
		}
	}
}

// TestSmallAndMultiMonth covers configs smaller than the number of hours and spanning months,
// and the surcharge dates.
func TestSmallAndMultiMonth(t *testing.T) {
	for _, rows := range []int64{1, 7, 743, 745} {
		mustRides(t, DefaultConfig(rows))
	}
	cfg := DefaultConfig(20_000)
	cfg.Month = time.Date(2018, 12, 1, 0, 0, 0, 0, time.UTC)
	cfg.Months = 3
	cfg.OutlierRate = 0
	byMonth := map[time.Month]int{}
	for _, r := range mustRides(t, cfg) {
		pick := time.UnixMicro(r.PickupMicros).UTC()
		byMonth[pick.Month()]++
		if r.CBDCents != 0 {
			t.Fatalf("CBD fee before 2025: %+v", r)
		}
		if r.ImprovementCents != improvementOldCts {
			t.Fatalf("improvement surcharge %d in %s", r.ImprovementCents, pick)
		}
		if r.CongestionCents != 0 && pick.Unix() < congestionSince {
			t.Fatalf("congestion surcharge before 2019-02-02 at %s", pick)
		}
	}
	for _, m := range []time.Month{time.December, time.January, time.February} {
		if byMonth[m] < 5000 {
			t.Errorf("%s holds %d of 20000 rows", m, byMonth[m])
		}
	}
}

func TestRowGroups(t *testing.T) {
	cfg := DefaultConfig(5000)
	cfg.RowGroupRows = 1024
	data, _ := writeToBuffer(t, cfg)
	f := openParquet(t, data)
	var sizes []int64
	for _, rg := range f.RowGroups() {
		sizes = append(sizes, rg.NumRows())
	}
	if want := []int64{1024, 1024, 1024, 1024, 904}; !slicesEqual(sizes, want) {
		t.Errorf("row groups %v, want %v", sizes, want)
	}
	if f.NumRows() != 5000 {
		t.Errorf("NumRows = %d", f.NumRows())
	}
	if got := f.Metadata().CreatedBy; got != CreatedBy {
		t.Errorf("created_by = %q", got)
	}
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCompressionCodecs(t *testing.T) {
	for _, c := range []Compression{CompressionZstd, CompressionSnappy, CompressionNone} {
		cfg := DefaultConfig(2000)
		cfg.Compression = c
		data, _ := writeToBuffer(t, cfg)
		f := openParquet(t, data)
		codec := f.Metadata().RowGroups[0].Columns[0].MetaData.Codec.String()
		want := map[Compression]string{CompressionZstd: "ZSTD", CompressionSnappy: "SNAPPY", CompressionNone: "UNCOMPRESSED"}[c]
		if codec != want {
			t.Errorf("Compression %s wrote codec %s", c, codec)
		}
		if rows := readRows(t, data); len(rows) != 2000 {
			t.Errorf("Compression %s: read %d rows", c, len(rows))
		}
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "green.parquet")
	var progress []int64
	st, err := WriteFile(context.Background(), path, DefaultConfig(40_000), WithProgress(10_000, func(n int64) {
		progress = append(progress, n)
	}))
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != st.Bytes || st.Rows != 40_000 {
		t.Errorf("Stats %+v, file size %d", st, info.Size())
	}
	if len(progress) < 2 || progress[len(progress)-1] != 40_000 {
		t.Errorf("progress calls %v", progress)
	}

	bad := filepath.Join(t.TempDir(), "missing", "x.parquet")
	if _, err := WriteFile(context.Background(), bad, DefaultConfig(10), nil...); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("WriteFile into a missing directory: %v", err)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g, err := New(DefaultConfig(100_000))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteParquet(ctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteParquet with a canceled context: %v", err)
	}
	path := filepath.Join(t.TempDir(), "x.parquet")
	if _, err := WriteFile(ctx, path, DefaultConfig(100_000)); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteFile with a canceled context: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("partial file left behind: %v", err)
	}
}

// TestEmitError: an error from the callback stops Generate and comes back unchanged.
func TestEmitError(t *testing.T) {
	g, err := New(DefaultConfig(100_000))
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	calls := 0
	err = g.Generate(context.Background(), func([]Ride) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Generate = %v after %d calls", err, calls)
	}
}
