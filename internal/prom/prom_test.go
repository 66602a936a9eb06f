package prom

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterRegistersOnceAndRefusesAClash(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := CounterVec("vrrplb_test_total", "A test counter.", "a")
	g := GaugeVec("vrrplb_test_gauge", "A test gauge.", "a", "b")
	if err := Register(reg, "test metrics", c, g); err != nil {
		t.Fatal(err)
	}
	c.WithLabelValues("x").Inc()
	g.WithLabelValues("x", "y").Set(2)
	if n := testutil.CollectAndCount(reg); n != 2 {
		t.Errorf("%d series registered, want 2", n)
	}
	err := Register(reg, "test metrics", CounterVec("vrrplb_test_total", "A test counter.", "a"))
	if err == nil || !strings.HasPrefix(err.Error(), "register test metrics: ") {
		t.Errorf("second registration: %v, want a clash naming the test metrics", err)
	}
	if err := Register(nil, "test metrics", c); err != nil {
		t.Errorf("nil registerer: %v, want nothing registered and no error", err)
	}
}
