package codecs

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// referenceFloat is appendFloat without the exact-cents fast path.
func referenceFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	for _, b := range []byte(s) {
		if b == '.' {
			return s
		}
	}
	return s + ".0"
}

// TestAppendFloatCentsFastPathMatchesStrconv: the fast path writes what strconv would,
// byte for byte, on every cent value in ±1000.00, on random cents up to the 1e13 bound,
// on random doubles (mostly not cents) and on the edges.
func TestAppendFloatCentsFastPathMatchesStrconv(t *testing.T) {
	check := func(v float64) {
		t.Helper()
		got := string(appendFloat(nil, NullFloat{V: v, Valid: true}))
		if want := referenceFloat(v); got != want {
			t.Fatalf("appendFloat(%v) = %q, strconv gives %q", v, got, want)
		}
	}
	fast := 0
	for c := int64(-100_000); c <= 100_000; c++ {
		v := float64(c) / 100
		if _, ok := exactCents(v); ok {
			fast++
		}
		check(v)
	}
	if fast != 200_001 {
		t.Errorf("%d of 200001 cent values took the fast path", fast)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		check(float64(r.Int64N(2e15)-1e15) / 100) // cents up to ±1e13
		check((r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(30)-10)))
		check(float64(r.Int64N(1e6)) / 1000) // thousandths: mostly not cents
	}
	for _, v := range []float64{0, math.Copysign(0, -1), 0.01, -0.01, 0.1, 0.005, 0.015, 1.005, 2.675,
		0.1 + 0.2, 1e13 - 0.01, -(1e13 - 0.01), 1e13, 1e13 + 0.5, 9007199254740993, 1e-300, 5e-324,
		math.MaxFloat64, 123456789012.34, 99.99, 100, -7.5} {
		check(v)
	}
}

func BenchmarkAppendFloat(b *testing.B) {
	vals := []float64{12.5, 0, 2.34, 17.8, 0.5, 1.02, 3.75, 44.01}
	var dst []byte
	for i := 0; b.Loop(); i++ {
		dst = appendFloat(dst[:0], NullFloat{V: vals[i%len(vals)], Valid: true})
	}
}
