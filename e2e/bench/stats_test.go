package main

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestMeanSD(t *testing.T) {
	m, sd := meanSD([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if m != 5 || !near(sd, math.Sqrt(32.0/7), 1e-12) {
		t.Errorf("meanSD = %v, %v; want 5, %v", m, sd, math.Sqrt(32.0/7))
	}
	if _, sd := meanSD([]float64{3}); !math.IsNaN(sd) {
		t.Errorf("sd of one value = %v, want NaN", sd)
	}
}

func TestTQuantile(t *testing.T) {
	for _, tt := range []struct {
		df   int
		want float64
	}{{1, 12.706}, {9, 2.262}, {30, 2.042}, {31, 1.96}, {1000, 1.96}} {
		if got := tQuantile(tt.df); got != tt.want {
			t.Errorf("tQuantile(%d) = %v, want %v", tt.df, got, tt.want)
		}
	}
	if !math.IsNaN(tQuantile(0)) {
		t.Error("tQuantile(0) is a number")
	}
}

func TestPairedRatioCI(t *testing.T) {
	t.Run("identical ratios in every round give a zero-width interval", func(t *testing.T) {
		a := map[int]float64{0: 90, 1: 180, 2: 45}
		b := map[int]float64{0: 100, 1: 200, 2: 50}
		r := pairedRatioCI(a, b)
		if r.n != 3 || !near(r.mean, 0.9, 1e-12) || !near(r.lo, 0.9, 1e-12) || !near(r.hi, 0.9, 1e-12) {
			t.Errorf("got %+v, want n 3 and 0.9 (0.9–0.9)", r)
		}
	})
	t.Run("the interval is t times the standard error of the log ratios", func(t *testing.T) {
		// Log ratios ±0.1 around 0 over 10 rounds: mean 0, sd = sqrt(10·0.01/9).
		a, b := map[int]float64{}, map[int]float64{}
		for i := range 10 {
			b[i] = 1000
			a[i] = 1000 * math.Exp(0.1*float64(1-2*(i%2)))
		}
		r := pairedRatioCI(a, b)
		half := 2.262 * math.Sqrt(0.1/9) / math.Sqrt(10)
		if r.n != 10 || !near(r.mean, 1, 1e-12) || !near(r.lo, math.Exp(-half), 1e-9) || !near(r.hi, math.Exp(half), 1e-9) {
			t.Errorf("got %+v, want 1 (%.4f–%.4f)", r, math.Exp(-half), math.Exp(half))
		}
		if !near(r.minR, math.Exp(-0.1), 1e-12) || !near(r.maxR, math.Exp(0.1), 1e-12) {
			t.Errorf("range %v–%v, want %v–%v", r.minR, r.maxR, math.Exp(-0.1), math.Exp(0.1))
		}
	})
	t.Run("rounds missing on either side or failed are left out", func(t *testing.T) {
		a := map[int]float64{0: 50, 1: 60, 2: 0, 3: 70}
		b := map[int]float64{0: 100, 1: 120, 2: 100}
		r := pairedRatioCI(a, b)
		if r.n != 2 || !near(r.mean, 0.5, 1e-12) {
			t.Errorf("got %+v, want 2 rounds at 0.5", r)
		}
	})
	t.Run("one round gives a ratio but no interval", func(t *testing.T) {
		r := pairedRatioCI(map[int]float64{0: 2}, map[int]float64{0: 1})
		if r.n != 1 || r.mean != 2 || !math.IsNaN(r.lo) || !math.IsNaN(r.hi) {
			t.Errorf("got %+v, want 1 round, 2, no interval", r)
		}
	})
	t.Run("no common round gives nothing", func(t *testing.T) {
		r := pairedRatioCI(map[int]float64{0: 2}, map[int]float64{1: 1})
		if r.n != 0 || !math.IsNaN(r.mean) {
			t.Errorf("got %+v, want nothing", r)
		}
	})
}

func TestSpreadOf(t *testing.T) {
	s := spreadOf([]float64{90, 100, 110})
	if s.lo != 90 || s.hi != 110 || !near(s.cv, 0.1, 1e-12) {
		t.Errorf("got %+v, want 90–110, cv 0.1", s)
	}
}
