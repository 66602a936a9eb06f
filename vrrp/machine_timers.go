package vrrp

import "time"

// learnInterval takes the master's advert interval as Master_Adver_Interval
// (RFC 5798 §6.4.2); version 2 routers share one configured interval. What
// it learns is bounded by maxLearnedInterval.
func (m *Machine) learnInterval(d time.Duration) {
	if m.cfg.Version == 3 && d > 0 {
		m.masterAdverInterval = min(d, m.maxLearnedInterval())
	}
}

// maxLearnedInterval is the longest Master_Adver_Interval a backup learns:
// the one whose Master_Down_Interval is the configured one plus a second, so
// that one advert, forged or broken, holds a backup back no longer than
// that. Solving 3×L + w×L/256 = 3×I + w×I/256 + 1s (w = 256 − priority)
// gives L = I + 256 s / (768 + w). A master advertising up to
// MaxIntervalRatio times slower is still heard before that timer runs out.
func (m *Machine) maxLearnedInterval() time.Duration {
	w := time.Duration(256 - int(m.priority))
	return m.cfg.AdvertInterval + 256*time.Second/(768+w)
}

// MaxIntervalRatio bounds the advert interval a version 3 instance accepts:
// an advert announcing an interval more than this many times its own
// configured one is dropped (reason "interval"). Up to it, the bounded
// Master_Down_Interval (maxLearnedInterval) still spans a whole interval
// of the master; beyond, only a broken or forged advert would ask for it.
const MaxIntervalRatio = 3

// assertEvery is how often at most a master answers lower-priority adverts
// with an advert and a gratuitous-ARP burst: once per advert interval, and
// not more than once a second.
func (m *Machine) assertEvery() time.Duration {
	return max(m.cfg.AdvertInterval, time.Second)
}

// skewTime is Skew_Time (RFC 5798 §6.1, RFC 3768 §6.1), in nanoseconds: whole
// centiseconds would give every backup the same timer at 10 ms adverts.
func (m *Machine) skewTime() time.Duration {
	weight := time.Duration(256 - int(m.priority))
	if m.cfg.Version == 2 {
		return weight * time.Second / 256
	}
	return weight * m.masterAdverInterval / 256
}

// masterDownInterval is Master_Down_Interval (RFC 5798 §6.1, RFC 3768 §6.1).
func (m *Machine) masterDownInterval() time.Duration {
	return 3*m.masterAdverInterval + m.skewTime()
}
