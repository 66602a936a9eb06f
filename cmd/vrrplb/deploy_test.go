package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// designedMetrics are DESIGN.md's metric names and the engine's, the ones dashboards and
// alerts may use (histograms with their _bucket/_count/_sum series).
var designedMetrics = map[string]bool{
	"vrrplb_instance_state": true, "vrrplb_instance_priority": true, "vrrplb_instance_transitions_total": true,
	"vrrplb_adverts_sent_total": true, "vrrplb_adverts_received_total": true, "vrrplb_packets_dropped_total": true,
	"vrrplb_garp_sent_total": true, "vrrplb_frontend_connections_total": true, "vrrplb_frontend_active_connections": true,
	"vrrplb_frontend_rejected_total": true, "vrrplb_backend_up": true, "vrrplb_backend_active_connections": true,
	"vrrplb_backend_connections_total": true, "vrrplb_backend_connect_errors_total": true, "vrrplb_backend_bytes_total": true,
	"vrrplb_health_check_duration_seconds_bucket": true, "vrrplb_health_check_duration_seconds_count": true,
	"vrrplb_health_check_duration_seconds_sum": true, "vrrplb_health_checks_total": true,
	"vrrplb_config_last_reload_successful": true, "vrrplb_config_last_reload_success_timestamp_seconds": true,
	"vrrplb_build_info": true,
	// The VRRP engine process (engine.go), added to DESIGN.md's list.
	metricEngineRestarts: true, metricEngineRealtime: true, metricEngineGoroutines: true,
	metricEngineGCPauseMax: true,
}

// The shipped alert rules and dashboard use only metrics vrrplb exports; a
// renamed metric would otherwise leave an alert silently never firing.
func TestDeployFilesUseOnlyDesignedMetrics(t *testing.T) {
	name := regexp.MustCompile(`vrrplb_[a-z_]+`)
	for _, f := range []string{"../../deploy/prometheus/vrrplb-alerts.yaml", "../../deploy/grafana/vrrplb-dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		used := name.FindAllString(string(b), -1)
		if len(used) == 0 {
			t.Errorf("%s uses no vrrplb metric", f)
		}
		for _, m := range used {
			if !designedMetrics[m] {
				t.Errorf("%s uses %s, which vrrplb does not export", f, m)
			}
		}
	}
}

// The VRRP series carry the instance's name in vrrp_instance; rules and
// panels written for the old label (stored as exported_instance) would
// group nothing.
func TestDeployFilesGroupVRRPSeriesByVrrpInstance(t *testing.T) {
	for _, f := range []string{"../../deploy/prometheus/vrrplb-alerts.yaml", "../../deploy/grafana/vrrplb-dashboard.json", "../../README.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "exported_instance") {
			t.Errorf("%s still names exported_instance; the VRRP label is vrrp_instance", f)
		}
		if !strings.Contains(string(b), "vrrp_instance") {
			t.Errorf("%s never names vrrp_instance", f)
		}
	}
}

func TestDashboardIsGrafanaJSON(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/vrrplb-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 6 {
		t.Fatalf("dashboard title %q uid %q with %d panels", d.Title, d.UID, len(d.Panels))
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}
