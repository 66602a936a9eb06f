package health

import "time"

// State is what a Checker believes about a backend.
type State int8

// Backend states. Only Up is healthy.
const (
	// Unknown: no check has finished since the backend was configured. The
	// first result decides, so a daemon neither sends traffic to an unchecked
	// backend nor waits rise × interval at start.
	Unknown State = iota
	// Down: fall consecutive checks failed, or the first check failed.
	Down
	// Up: rise consecutive checks passed, or the first check passed.
	Up
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	default:
		return "unknown"
	}
}

// streak is a backend's state together with the run of consecutive results
// that disagree with it: successes while Down, failures while Up.
type streak struct {
	state State
	run   int
}

// next is the rise/fall hysteresis: the streak after one more check result.
// From Unknown the first result decides. A result that agrees with the state
// resets the run; rise consecutive successes take Down to Up, fall
// consecutive failures take Up to Down. rise and fall below 1 count as 1.
func next(s streak, ok bool, rise, fall int) streak {
	if s.state == Unknown {
		if ok {
			return streak{state: Up}
		}
		return streak{state: Down}
	}
	if ok == (s.state == Up) {
		return streak{state: s.state}
	}
	s.run++
	limit, to := fall, Down
	if ok {
		limit, to = rise, Up
	}
	if s.run >= limit {
		return streak{state: to}
	}
	return s
}

// jitterFraction bounds how far an interval moves either way, so checks of
// many backends (and many vrrplb hosts) do not fall into lockstep.
const jitterFraction = 0.1

// jitter returns d moved by up to ±10%: r in [0, 1) maps linearly onto
// [0.9·d, 1.1·d).
func jitter(d time.Duration, r float64) time.Duration {
	return d + time.Duration((2*r-1)*jitterFraction*float64(d))
}
