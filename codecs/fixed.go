package codecs

import (
	"errors"
	"math"
	"strconv"
)

// Errors of the fixed-point conversions.
var (
	// ErrNotNumber: the text is not a JSON number (or the float is NaN or infinite).
	ErrNotNumber = errors.New("not a number")
	// ErrNotInteger: an integer was wanted and the number has a non-zero fraction.
	ErrNotInteger = errors.New("not an integer")
	// ErrOverflow: the value does not fit the int64 result (|value| >= 1e18 units).
	ErrOverflow = errors.New("out of range")
)

// maxScaledDigits is how many integer digits a scaled result may have: 18 digits always fit
// an int64.
const maxScaledDigits = 18

// decimal is a JSON number split into its significant digits: value = ±0.d1d2d3... × 10^exp.
// Only the first len(digits) significant digits are kept; truncated says whether a non-zero
// digit was dropped after them. It lives on the stack: no allocation.
type decimal struct {
	digits    [20]byte // ASCII digits, no leading or trailing zero
	n         int      // digits used
	exp       int      // decimal point position
	neg       bool
	truncated bool
}

// parseDecimal splits the JSON number text b. It reports false unless b is exactly one JSON
// number (RFC 8259 grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?).
func parseDecimal(b []byte, d *decimal) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		d.neg = true
		i++
	}
	if i >= len(b) {
		return false
	}
	seenNonZero := false
	add := func(c byte) {
		if d.n < len(d.digits) {
			d.digits[d.n] = c
			d.n++
		} else if c != '0' {
			d.truncated = true
		}
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if !seenNonZero && b[i] == '0' {
				continue // unreachable for valid JSON, kept for clarity
			}
			seenNonZero = true
			add(b[i])
			d.exp++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if !seenNonZero {
				if b[i] == '0' {
					d.exp--
					continue
				}
				seenNonZero = true
			}
			add(b[i])
		}
		if i == start {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		start := i
		e := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if e < 1e6 { // clamp: anything this large is out of every range anyway
				e = e*10 + int(b[i]-'0')
			}
		}
		if i == start {
			return false
		}
		if eneg {
			e = -e
		}
		d.exp += e
	}
	if i != len(b) {
		return false
	}
	if !seenNonZero {
		d.n, d.exp, d.truncated = 0, 0, false
	}
	for d.n > 0 && d.digits[d.n-1] == '0' { // normalise: "1.50" has the digits of "1.5"
		d.n--
	}
	return true
}

// scaled returns round_half_away_from_zero(value × 10^scale). The rounding digit is the first
// dropped digit: >= 5 rounds the magnitude up, which is "half away from zero" because any
// further digits only make the dropped part larger.
func (d *decimal) scaled(scale int) (int64, error) {
	if d.n == 0 {
		return 0, nil
	}
	k := d.exp + scale // number of digits left of the point after scaling
	if k > maxScaledDigits {
		return 0, ErrOverflow
	}
	if k < 0 {
		return 0, nil
	}
	var r int64
	for j := 0; j < k; j++ {
		r *= 10
		if j < d.n {
			r += int64(d.digits[j] - '0')
		}
	}
	if k < d.n && d.digits[k] >= '5' {
		r++
	}
	if d.neg {
		r = -r
	}
	return r, nil
}

// integer returns the value as an int64 if it has no fractional part (1, 1.0, 1e3, 10.00e-1).
func (d *decimal) integer() (int64, error) {
	if d.n == 0 {
		return 0, nil
	}
	if d.exp > maxScaledDigits {
		return 0, ErrOverflow
	}
	if d.exp < d.n || d.truncated {
		return 0, ErrNotInteger
	}
	return d.scaled(0)
}

// pow10 holds 10^0 .. 10^18.
var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// fastDecimal parses the common shape of TLC numbers, -?(0|[1-9][0-9]*)(\.[0-9]+)? with at most
// 18 digits, as mant × 10^-frac. ok is false for anything else (exponents, long numbers, and
// also invalid text), which the caller hands to the general parseDecimal.
func fastDecimal(b []byte) (mant int64, frac int, ok bool) {
	i := 0
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, i = true, 1
	}
	if i >= len(b) || (b[i] == '0' && i+1 < len(b) && b[i+1] != '.') {
		return 0, 0, false
	}
	start := i
	for ; i < len(b) && b[i]-'0' < 10; i++ {
		mant = mant*10 + int64(b[i]-'0')
	}
	digits := i - start
	if digits == 0 {
		return 0, 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		fs := i
		for ; i < len(b) && b[i]-'0' < 10; i++ {
			mant = mant*10 + int64(b[i]-'0')
		}
		frac = i - fs
		if frac == 0 {
			return 0, 0, false
		}
		digits += frac
	}
	if i != len(b) || digits > 18 {
		return 0, 0, false
	}
	if neg {
		mant = -mant
	}
	return mant, frac, true
}

// fixed2 is ParseFixed2 with the fast path.
func fixed2(text []byte) (int64, error) {
	if mant, frac, ok := fastDecimal(text); ok {
		if frac <= 2 {
			if mant < 1e16 && mant > -1e16 {
				return mant * pow10[2-frac], nil
			}
		} else {
			p := pow10[frac-2]
			q, r := mant/p, mant%p
			if r < 0 {
				r = -r
			}
			if 2*r >= p { // half or more of the last kept unit: away from zero
				if mant < 0 {
					q--
				} else {
					q++
				}
			}
			return q, nil
		}
	}
	var d decimal
	if !parseDecimal(text, &d) {
		return 0, ErrNotNumber
	}
	return d.scaled(2)
}

// integer is ParseInteger with the fast path.
func integer(text []byte) (int64, error) {
	if mant, frac, ok := fastDecimal(text); ok {
		if frac == 0 {
			return mant, nil
		}
		p := pow10[frac]
		if mant%p != 0 {
			return 0, ErrNotInteger
		}
		return mant / p, nil
	}
	var d decimal
	if !parseDecimal(text, &d) {
		return 0, ErrNotNumber
	}
	return d.integer()
}

// ParseFixed2 converts JSON number text to value × 100 rounded half away from zero: cents for
// dollars, hundredths for miles. It works on the decimal text, so "0.29" is exactly 29 (a float
// would give 28.999999999999996). Errors: ErrNotNumber, ErrOverflow (|value| >= 1e16).
func ParseFixed2(text []byte) (int64, error) { return fixed2(text) }

// ParseInteger converts JSON number text with an integral value ("1", "1.0", "1e3") to int64.
// Errors: ErrNotNumber, ErrNotInteger, ErrOverflow (|value| >= 1e18).
func ParseInteger(text []byte) (int64, error) { return integer(text) }

// Fixed2OfFloat is ParseFixed2 of the shortest decimal that round-trips v
// (strconv.FormatFloat(v, 'f', -1, 64), the text the producer writes into JSON). A Parquet
// double and its JSON text therefore give identical cents. It does not allocate: it formats
// in 'e' form into a stack buffer, which has the same shortest digits as 'f'.
// Errors: ErrNotNumber for NaN and ±Inf, ErrOverflow for |v| >= 1e16.
func Fixed2OfFloat(v float64) (int64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, ErrNotNumber
	}
	if math.Abs(v) >= 1e16 {
		return 0, ErrOverflow
	}
	var buf [32]byte
	return fixed2(strconv.AppendFloat(buf[:0], v, 'e', -1, 64))
}
