package codecs

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestParseFixed2(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  error
	}{
		{"0", 0, nil},
		{"-0", 0, nil},
		{"0.0", 0, nil},
		{"1", 100, nil},
		{"1.0", 100, nil},
		{"0.29", 29, nil},          // 0.29*100 in float64 is 28.999999999999996
		{"1.005", 101, nil},        // the double nearest 1.005 is below it; text is exact
		{"0.005", 1, nil},          // half rounds away from zero
		{"-0.005", -1, nil},        // ... on both sides
		{"0.0049999999", 0, nil},   // below half
		{"-0.0050000001", -1, nil}, // above half
		{"0.015", 2, nil},
		{"2.675", 268, nil},
		{"-12.345", -1235, nil},
		{".5", 0, ErrNotNumber},
		{"1e2", 10000, nil},
		{"1E+2", 10000, nil},
		{"125e-3", 13, nil},
		{"-125e-3", -13, nil},
		{"1e-400", 0, nil},
		{"0.000000000000000000000000000006", 0, nil},
		{"5e-3", 1, nil},
		{"4e-3", 0, nil},
		{"12345678901234567.891", 0, ErrOverflow},
		{"9999999999999999.99", 999999999999999999, nil},
		{"1e16", 0, ErrOverflow},
		{"1e999999999", 0, ErrOverflow},
		{"0.12345678901234567890123456789", 12, nil},
		{"0.00500000000000000000000000001", 1, nil},
		{"", 0, ErrNotNumber},
		{"-", 0, ErrNotNumber},
		{"01", 0, ErrNotNumber},
		{"1.", 0, ErrNotNumber},
		{"+1", 0, ErrNotNumber},
		{"1e", 0, ErrNotNumber},
		{"1e+", 0, ErrNotNumber},
		{"NaN", 0, ErrNotNumber},
		{"Infinity", 0, ErrNotNumber},
		{"0x10", 0, ErrNotNumber},
		{"1_000", 0, ErrNotNumber},
		{"1 ", 0, ErrNotNumber},
		{"--1", 0, ErrNotNumber},
	} {
		got, err := ParseFixed2([]byte(tc.in))
		if !errors.Is(err, tc.err) || (err == nil && got != tc.want) {
			t.Errorf("ParseFixed2(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseInteger(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  error
	}{
		{"1", 1, nil},
		{"1.0", 1, nil},
		{"1.000", 1, nil},
		{"-7", -7, nil},
		{"1e3", 1000, nil},
		{"10.00e-1", 1, nil},
		{"1609459200000", 1609459200000, nil},
		{"1609459200000.0", 1609459200000, nil},
		{"0", 0, nil},
		{"0.0", 0, nil},
		{"1.5", 0, ErrNotInteger},
		{"1e-1", 0, ErrNotInteger},
		{"100000000000000000000.5", 0, ErrOverflow},
		{"1.00000000000000000000000001", 0, ErrNotInteger},
		{"999999999999999999", 999999999999999999, nil},
		{"1e18", 0, ErrOverflow},
		{"true", 0, ErrNotNumber},
	} {
		got, err := ParseInteger([]byte(tc.in))
		if !errors.Is(err, tc.err) || (err == nil && got != tc.want) {
			t.Errorf("ParseInteger(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// refFixed2 is the reference: exact rational arithmetic, round half away from zero.
func refFixed2(text string) (int64, bool) {
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return 0, false
	}
	r.Mul(r, big.NewRat(100, 1))
	neg := r.Sign() < 0
	r.Abs(r)
	r.Add(r, big.NewRat(1, 2))
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if neg {
		q.Neg(q)
	}
	return q.Int64(), q.IsInt64()
}

func TestParseFixed2MatchesExactArithmetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		var text string
		switch i % 3 {
		case 0: // decimal with up to 6 fraction digits
			text = strconv.FormatFloat(float64(rng.Int64N(2e12)-1e12)/1e6, 'f', rng.IntN(7), 64)
		case 1: // shortest float text, the producer's
			text = strconv.FormatFloat((rng.Float64()-0.5)*2e6, 'f', -1, 64)
		default: // exponent form
			text = strconv.FormatFloat((rng.Float64()-0.5)*2e6, 'e', rng.IntN(12), 64)
		}
		want, ok := refFixed2(text)
		if !ok {
			continue
		}
		got, err := ParseFixed2([]byte(text))
		if err != nil || got != want {
			t.Fatalf("ParseFixed2(%q) = %d, %v; exact arithmetic gives %d", text, got, err, want)
		}
	}
}

func TestFixed2OfFloatEqualsJSONText(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := []float64{0, math.Copysign(0, -1), 0.29, 1.005, 2.675, -0.005, 4.35, 1e-320, 5e-324, 9999999999999998, 123456.785}
	for i := 0; i < 100000; i++ {
		values = append(values, float64(rng.Int64N(2e8)-1e8)/100, (rng.Float64()-0.5)*1e6, rng.NormFloat64())
	}
	for _, v := range values {
		got, err := Fixed2OfFloat(v)
		want, werr := ParseFixed2([]byte(strconv.FormatFloat(v, 'f', -1, 64)))
		if err != nil || werr != nil || got != want {
			t.Fatalf("Fixed2OfFloat(%v) = %d, %v; JSON text gives %d, %v", v, got, err, want, werr)
		}
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := Fixed2OfFloat(v); !errors.Is(err, ErrNotNumber) {
			t.Errorf("Fixed2OfFloat(%v) error = %v, want ErrNotNumber", v, err)
		}
	}
	if _, err := Fixed2OfFloat(1e16); !errors.Is(err, ErrOverflow) {
		t.Errorf("Fixed2OfFloat(1e16) error = %v, want ErrOverflow", err)
	}
}

func BenchmarkFixed2OfFloat(b *testing.B) {
	b.ReportAllocs()
	var sum int64
	for i := 0; i < b.N; i++ {
		v, _ := Fixed2OfFloat(12.34 + float64(i&1023))
		sum += v
	}
	_ = sum
}

func BenchmarkParseFixed2(b *testing.B) {
	b.ReportAllocs()
	text := []byte("1234.56")
	for i := 0; i < b.N; i++ {
		if _, err := ParseFixed2(text); err != nil {
			b.Fatal(err)
		}
	}
}

func TestValidNumberAgreesWithParseDecimal(t *testing.T) {
	for _, in := range []string{"0", "-0", "1", "-1.5", "1e5", "1E+5", "1e-5", "0.0", "12.340", "", "-", "01", "1.",
		".1", "+1", "1e", "1e+", "--1", "1.2.3", "0x1", "NaN", "1ee2", "-.5", "00", "1e5.5"} {
		var d decimal
		if got, want := validNumber([]byte(in)), parseDecimal([]byte(in), &d); got != want {
			t.Errorf("validNumber(%q) = %v, parseDecimal says %v", in, got, want)
		}
	}
}

func TestHasSpecial8(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 200000; i++ {
		var b [8]byte
		for j := range b {
			switch rng.IntN(6) {
			case 0:
				b[j] = byte(rng.IntN(256))
			default:
				b[j] = byte(0x20 + rng.IntN(0x60))
			}
		}
		want := false
		for _, c := range b {
			want = want || stringSpecial[c]
		}
		x := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 |
			uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		if got := hasSpecial8(x); got != want {
			t.Fatalf("hasSpecial8(% x) = %v, want %v", b, got, want)
		}
	}
}
