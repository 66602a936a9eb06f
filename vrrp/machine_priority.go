package vrrp

// EffectivePriority applies tracker weights to a configured priority. A
// failing weight-0 tracker means fault, unless it yields instead (Yield).
// Otherwise a failing tracker with a
// negative weight subtracts it and a passing one with a positive weight adds
// it; the result stays within 1..254. The address owner (255) keeps 255.
func EffectivePriority(priority uint8, trackers []TrackerState) (prio uint8, fault bool) {
	p := int(priority)
	for _, t := range trackers {
		switch {
		case t.Weight == 0 && !t.OK && !t.Yield:
			fault = true
		case t.Weight < 0 && !t.OK, t.Weight > 0 && t.OK:
			p += t.Weight
		}
	}
	if priority == PriorityOwner {
		return PriorityOwner, fault
	}
	return uint8(min(max(p, 1), PriorityOwner-1)), fault
}

// TrackerState is a tracker's last verdict and its configured weight.
type TrackerState struct {
	Weight int
	OK     bool
	// Yield: with weight 0, failing makes the instance yield rather than
	// fault (track_frontend).
	Yield bool
}
