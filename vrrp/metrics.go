package vrrp

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vrrplb/vrrplb/internal/prom"
)

// Metric names (DESIGN.md, "Admin HTTP").
const (
	MetricInstanceState       = "vrrplb_instance_state"
	MetricInstancePriority    = "vrrplb_instance_priority"
	MetricInstanceTransitions = "vrrplb_instance_transitions_total"
	MetricAdvertsSent         = "vrrplb_adverts_sent_total"
	MetricAdvertsReceived     = "vrrplb_adverts_received_total"
	MetricPacketsDropped      = "vrrplb_packets_dropped_total"
	MetricGARPSent            = "vrrplb_garp_sent_total"
	MetricTakeoverResets      = "vrrplb_takeover_resets_total"
	MetricTakeoverTuplesHeld  = "vrrplb_takeover_tuples_held"
	MetricTakeoverDropped     = "vrrplb_takeover_stream_dropped_total"
	MetricTakeoverCancelled   = "vrrplb_takeover_prompts_cancelled_total"
)

// LabelInstance is the label with the instance's name on every VRRP series.
// Not "instance": Prometheus keeps that for the scraped target.
const LabelInstance = "vrrp_instance"

// Metrics holds the VRRP instances' Prometheus series. One Metrics serves
// every instance of a daemon; each instance's series carry its name in the
// LabelInstance label and go away with DeleteInstance.
type Metrics struct {
	state            *prometheus.GaugeVec
	priority         *prometheus.GaugeVec
	transitions      *prometheus.CounterVec
	advertsSent      *prometheus.CounterVec
	advertsReceived  *prometheus.CounterVec
	dropped          *prometheus.CounterVec
	garpSent         *prometheus.CounterVec
	takeoverResets   *prometheus.CounterVec
	tuplesHeld       *prometheus.GaugeVec
	streamDropped    *prometheus.CounterVec
	promptsCancelled *prometheus.CounterVec
}

// NewMetrics creates the VRRP metrics and registers them with reg, like
// proxy.NewMetrics and health.NewMetrics: a clash with what reg already
// holds (a second NewMetrics on one registry) is an error. A nil reg
// registers nothing.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		state: instanceGauge(MetricInstanceState,
			"VRRP instance state: 1 for the current state (init, backup, master, fault), 0 for the others.", "state"),
		priority: instanceGauge(MetricInstancePriority,
			"VRRP instance effective priority: configured priority with tracker weights applied."),
		transitions: instanceCounter(MetricInstanceTransitions,
			"VRRP state transitions, by new state.", "to"),
		advertsSent: instanceCounter(MetricAdvertsSent,
			"VRRP advertisements sent (one per destination)."),
		advertsReceived: instanceCounter(MetricAdvertsReceived,
			"VRRP advertisements received that passed every check."),
		dropped: instanceCounter(MetricPacketsDropped,
			"VRRP packets dropped by the receive checks, by reason.", "reason"),
		garpSent: instanceCounter(MetricGARPSent,
			"Gratuitous ARP / unsolicited neighbour advertisement rounds sent for the virtual IPs."),
		takeoverResets: instanceCounter(MetricTakeoverResets,
			"Clients of a crashed master prompted to reset after taking over from it (one TCP segment each)."),
		tuplesHeld: instanceGauge(MetricTakeoverTuplesHeld,
			"Client connections of the master held by this backup from the takeover stream."),
		streamDropped: instanceCounter(MetricTakeoverDropped,
			"Takeover stream datagrams dropped, by reason.", "reason"),
		promptsCancelled: instanceCounter(MetricTakeoverCancelled,
			"Rounds of takeover prompts dropped before or while sending, by reason.", "reason"),
	}
	err := prom.Register(reg, "vrrp metrics", m.state, m.priority, m.transitions, m.advertsSent, m.advertsReceived, m.dropped, m.garpSent,
		m.takeoverResets, m.tuplesHeld, m.streamDropped, m.promptsCancelled)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// instanceCounter is a counter of VRRP instances, labelled with LabelInstance then labels.
func instanceCounter(name, help string, labels ...string) *prometheus.CounterVec {
	return prom.CounterVec(name, help, append([]string{LabelInstance}, labels...)...)
}

// instanceGauge is a gauge of VRRP instances, labelled with LabelInstance then labels.
func instanceGauge(name, help string, labels ...string) *prometheus.GaugeVec {
	return prom.GaugeVec(name, help, append([]string{LabelInstance}, labels...)...)
}

// DeleteInstance removes every series of the instance called name, for an
// instance removed by a reload. Call it after the instance's Run returned.
func (m *Metrics) DeleteInstance(name string) {
	l := prometheus.Labels{LabelInstance: name}
	m.state.DeletePartialMatch(l)
	m.priority.DeletePartialMatch(l)
	m.transitions.DeletePartialMatch(l)
	m.advertsSent.DeletePartialMatch(l)
	m.advertsReceived.DeletePartialMatch(l)
	m.dropped.DeletePartialMatch(l)
	m.garpSent.DeletePartialMatch(l)
	m.takeoverResets.DeletePartialMatch(l)
	m.tuplesHeld.DeletePartialMatch(l)
	m.streamDropped.DeletePartialMatch(l)
	m.promptsCancelled.DeletePartialMatch(l)
}

// instanceMetrics are one instance's series, resolved once.
type instanceMetrics struct {
	state            map[State]prometheus.Gauge
	priority         prometheus.Gauge
	transitions      map[State]prometheus.Counter
	advertsSent      prometheus.Counter
	advertsReceived  prometheus.Counter
	dropped          map[Reason]prometheus.Counter
	garpSent         prometheus.Counter
	takeoverResets   prometheus.Counter
	tuplesHeld       prometheus.Gauge
	streamDropped    map[StreamDrop]prometheus.Counter
	promptsCancelled map[PromptCancel]prometheus.Counter
}

// forInstance creates the series of the instance called name, every one at
// zero but the state, which is init.
func (m *Metrics) forInstance(name string) *instanceMetrics {
	im := &instanceMetrics{
		state:            map[State]prometheus.Gauge{},
		priority:         m.priority.WithLabelValues(name),
		transitions:      map[State]prometheus.Counter{},
		advertsSent:      m.advertsSent.WithLabelValues(name),
		advertsReceived:  m.advertsReceived.WithLabelValues(name),
		dropped:          map[Reason]prometheus.Counter{},
		garpSent:         m.garpSent.WithLabelValues(name),
		takeoverResets:   m.takeoverResets.WithLabelValues(name),
		tuplesHeld:       m.tuplesHeld.WithLabelValues(name),
		streamDropped:    map[StreamDrop]prometheus.Counter{},
		promptsCancelled: map[PromptCancel]prometheus.Counter{},
	}
	for _, r := range promptCancels {
		im.promptsCancelled[r] = m.promptsCancelled.WithLabelValues(name, string(r))
	}
	for _, r := range streamDrops {
		im.streamDropped[r] = m.streamDropped.WithLabelValues(name, string(r))
	}
	for _, s := range states {
		im.state[s] = m.state.WithLabelValues(name, s.String())
		im.transitions[s] = m.transitions.WithLabelValues(name, s.String())
	}
	for _, r := range dropReasons {
		im.dropped[r] = m.dropped.WithLabelValues(name, string(r))
	}
	im.setState(StateInit)
	return im
}

// setState makes s the one state at 1.
func (im *instanceMetrics) setState(s State) {
	for st, g := range im.state {
		if st == s {
			g.Set(1)
		} else {
			g.Set(0)
		}
	}
}
