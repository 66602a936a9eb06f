package e2e

import "time"

// skew is Skew_Time of RFC 5798 §6.1 for priority p at interval d.
func skew(p int, d time.Duration) time.Duration {
	return time.Duration(256-p) * d / 256
}
