// Package metricstest builds a package's Metrics on a registry of its own
// for a test, and checks the contract every package's NewMetrics keeps: a
// second one on the same registry is an error. It is for tests: the daemon
// does not use it.
package metricstest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// New calls newMetrics on a new registry and returns both; an error fails
// t.
func New[M any](t testing.TB, newMetrics func(prometheus.Registerer) (M, error)) (M, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// SecondOnOneRegistryFails checks that newMetrics, called a second time on
// one registry, returns an error that begins with prefix.
func SecondOnOneRegistryFails[M any](t testing.TB, newMetrics func(prometheus.Registerer) (M, error), prefix string) {
	t.Helper()
	_, reg := New(t, newMetrics)
	if err := secondOnOneRegistry(reg, newMetrics, prefix); err != nil {
		t.Error(err)
	}
}

// secondOnOneRegistry calls newMetrics on reg, which holds its metrics
// already, and says how that broke the contract; nil when it kept it.
func secondOnOneRegistry[M any](reg prometheus.Registerer, newMetrics func(prometheus.Registerer) (M, error), prefix string) error {
	if _, err := newMetrics(reg); err == nil || !strings.HasPrefix(err.Error(), prefix) {
		return fmt.Errorf("second NewMetrics = %v, want a registration error beginning %q", err, prefix)
	}
	return nil
}
