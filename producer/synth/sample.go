package synth

import "math"

// aliasTable samples an index with probability proportional to its weight in O(1) from one
// 64-bit random number (Vose's alias method): the high 32 bits pick a column, the low 32 bits
// flip its biased coin. It is used for the 265 zone weights, once or twice per row.
type aliasTable struct {
	prob  []uint64 // coin threshold scaled to 2^32; 1<<32 means "always the column itself"
	alias []int32
	n     uint64
}

func newAliasTable(weights []float64) aliasTable {
	n := len(weights)
	var sum float64
	for _, w := range weights {
		sum += w
	}
	scaled := make([]float64, n)
	small := make([]int, 0, n)
	large := make([]int, 0, n)
	for i, w := range weights {
		scaled[i] = w * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	t := aliasTable{prob: make([]uint64, n), alias: make([]int32, n), n: uint64(n)}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t.prob[s] = uint64(scaled[s] * (1 << 32))
		t.alias[s] = int32(l)
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What is left has weight 1 up to rounding.
	for _, i := range append(small, large...) {
		t.prob[i] = 1 << 32
		t.alias[i] = int32(i)
	}
	return t
}

func (t *aliasTable) sample(u uint64) int {
	i := ((u >> 32) * t.n) >> 32
	if u&0xFFFFFFFF < t.prob[i] {
		return int(i)
	}
	return int(t.alias[i])
}

// catTable samples one of a few values with given weights by a linear scan over cumulative
// thresholds; the tables are short and the first value is the common one.
type catTable struct {
	cum    []uint64 // cumulative weight scaled to 2^53, last = 2^53
	values []int64
}

func newCatTable(choices []choice) catTable {
	var sum float64
	for _, c := range choices {
		sum += c.weight
	}
	t := catTable{cum: make([]uint64, len(choices)), values: make([]int64, len(choices))}
	var acc float64
	for i, c := range choices {
		acc += c.weight
		t.cum[i] = uint64(acc / sum * (1 << 53))
		t.values[i] = c.value
	}
	t.cum[len(t.cum)-1] = 1 << 53
	return t
}

func (t *catTable) sample(u uint64) int64 {
	x := u >> 11
	for i, c := range t.cum {
		if x < c {
			return t.values[i]
		}
	}
	return t.values[len(t.values)-1]
}

// threshold turns a probability into a comparison bound for the top 53 bits of a random number:
// u>>11 < threshold(p) happens with probability p.
func threshold(p float64) uint64 {
	if p <= 0 {
		return 0
	}
	if p >= 1 {
		return 1 << 53
	}
	return uint64(math.Round(p * (1 << 53)))
}

// splitmix64 is the SplitMix64 finalizer; it derives independent PCG seeds from (seed, slot).
func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}
