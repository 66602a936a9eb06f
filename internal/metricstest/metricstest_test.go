package metricstest

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// counted registers one counter, as a package's NewMetrics does.
func counted(reg prometheus.Registerer) (prometheus.Counter, error) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "metricstest_total", Help: "A test counter."})
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("register test metrics: %w", err)
	}
	return c, nil
}

// shared swallows the clash, as vrrp's NewMetrics once did.
func shared(reg prometheus.Registerer) (prometheus.Counter, error) {
	c, err := counted(reg)
	if err != nil {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "metricstest_total", Help: "A test counter."}), nil
	}
	return c, nil
}

func TestNewRegistersOnARegistryOfItsOwn(t *testing.T) {
	c, reg := New(t, counted)
	c.Inc()
	n, err := reg.Gather()
	if err != nil || len(n) != 1 || n[0].GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Errorf("the registry gathered %v (%v), want the one counter at 1", n, err)
	}
}

func TestSecondOnOneRegistryTellsTheContractApart(t *testing.T) {
	for _, tt := range []struct {
		name       string
		newMetrics func(prometheus.Registerer) (prometheus.Counter, error)
		prefix     string
		wantBroken bool
	}{
		{"a second registration that is an error keeps it", counted, "register test metrics: ", false},
		{"an error with another prefix breaks it", counted, "register other metrics: ", true},
		{"a clash swallowed breaks it", shared, "register test metrics: ", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, reg := New(t, tt.newMetrics)
			err := secondOnOneRegistry(reg, tt.newMetrics, tt.prefix)
			if (err != nil) != tt.wantBroken {
				t.Errorf("secondOnOneRegistry = %v, want broken %v", err, tt.wantBroken)
			}
		})
	}
}
