// Package prom is how vrrp, health and proxy make and register their
// Prometheus series: one line a labelled series, and one registration
// contract for every NewMetrics (a nil registerer registers nothing; a clash
// with what it holds is an error). It knows no metric of its own.
package prom

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// CounterVec returns a counter family called name with these labels.
func CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// GaugeVec returns a gauge family called name with these labels.
func GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

// Register registers cs with reg; a nil reg registers nothing. The first
// clash is returned, naming what was registered ("proxy metrics").
func Register(reg prometheus.Registerer, what string, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register %s: %w", what, err)
		}
	}
	return nil
}
