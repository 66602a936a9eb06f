package bgp

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (DESIGN.md).
const (
	MetricPeerUp      = "vrrplb_bgp_peer_up"
	MetricAnnounced   = "vrrplb_bgp_announced"
	MetricUpdatesSent = "vrrplb_bgp_updates_sent_total"
)

var (
	descPeerUp = prometheus.NewDesc(MetricPeerUp,
		"1 while the BGP session with the peer is established.", []string{"peer"}, nil)
	descAnnounced = prometheus.NewDesc(MetricAnnounced,
		"How a prefix goes out: 1 announced, 0.5 depreferred (prepended or GRACEFUL_SHUTDOWN), 0 withdrawn.",
		[]string{"announce", "prefix"}, nil)
	descUpdatesSent = prometheus.NewDesc(MetricUpdatesSent,
		"BGP UPDATE messages sent to the peer since its session was configured.", []string{"peer"}, nil)
)

// scrapeTimeout bounds the speaker query of one scrape.
const scrapeTimeout = 2 * time.Second

// Describe is prometheus.Collector's: the announcer's series are read at
// scrape time from the speaker and the last decision.
func (a *Announcer) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPeerUp
	ch <- descAnnounced
	ch <- descUpdatesSent
}

// Collect is prometheus.Collector's.
func (a *Announcer) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	st := a.Status(ctx)
	for _, p := range st.Peers {
		up := 0.0
		if p.State == Established {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descPeerUp, prometheus.GaugeValue, up, p.Address.String())
		ch <- prometheus.MustNewConstMetric(descUpdatesSent, prometheus.CounterValue, float64(p.UpdatesSent), p.Address.String())
	}
	for _, an := range st.Announcements {
		for _, p := range an.Prefixes {
			ch <- prometheus.MustNewConstMetric(descAnnounced, prometheus.GaugeValue, an.State.Value(), an.Name, p.String())
		}
	}
}
