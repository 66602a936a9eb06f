package main

import (
	"math"
	"slices"
)

// tQuantile975 is Student's t distribution's 97.5th percentile by degrees of
// freedom (1..30), for a two-sided 95% interval; above 30 the normal 1.96
// is within 4%.
var tQuantile975 = [...]float64{
	1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
	11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086,
	21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042,
}

func tQuantile(df int) float64 {
	if df < 1 {
		return math.NaN()
	}
	if df < len(tQuantile975) {
		return tQuantile975[df]
	}
	return 1.96
}

// meanSD is the mean and the sample standard deviation (n-1).
func meanSD(vs []float64) (mean, sd float64) {
	if len(vs) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, v := range vs {
		mean += v
	}
	mean /= float64(len(vs))
	if len(vs) < 2 {
		return mean, math.NaN()
	}
	for _, v := range vs {
		sd += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(sd / float64(len(vs)-1))
}

// ratioCI is a per-round ratio a/b summarised: its geometric mean and a
// two-sided 95% confidence interval, from Student's t on the logarithms of
// the rounds' ratios (a ratio's noise is multiplicative, and 0.9× and 1.11×
// are the same distance from 1). Each round pairs two runs made back to
// back or close to it, so the pairing cancels what drifts slowly on the host.
type ratioCI struct {
	n            int
	mean, lo, hi float64 // geometric mean and the interval's ends
	minR, maxR   float64 // the rounds' smallest and largest ratios
}

// pairedRatioCI computes the interval from rounds where both a and b have
// a positive figure; with fewer than two such rounds lo and hi are NaN.
func pairedRatioCI(a, b map[int]float64) ratioCI {
	var logs []float64
	r := ratioCI{minR: math.Inf(1), maxR: math.Inf(-1)}
	for round, av := range a {
		bv, ok := b[round]
		if !ok || av <= 0 || bv <= 0 {
			continue
		}
		q := av / bv
		logs = append(logs, math.Log(q))
		r.minR, r.maxR = min(r.minR, q), max(r.maxR, q)
	}
	r.n = len(logs)
	if r.n == 0 {
		return ratioCI{mean: math.NaN(), lo: math.NaN(), hi: math.NaN(), minR: math.NaN(), maxR: math.NaN()}
	}
	slices.Sort(logs) // a sum in a fixed order: the same rounds give the same digits
	m, sd := meanSD(logs)
	r.mean = math.Exp(m)
	if r.n < 2 {
		r.lo, r.hi = math.NaN(), math.NaN()
		return r
	}
	half := tQuantile(r.n-1) * sd / math.Sqrt(float64(r.n))
	r.lo, r.hi = math.Exp(m-half), math.Exp(m+half)
	return r
}

// spread is a set of runs' range and coefficient of variation (sd/mean).
type spread struct {
	lo, hi, cv float64
}

func spreadOf(vs []float64) spread {
	if len(vs) == 0 {
		return spread{math.NaN(), math.NaN(), math.NaN()}
	}
	m, sd := meanSD(vs)
	return spread{lo: slices.Min(vs), hi: slices.Max(vs), cv: sd / m}
}
