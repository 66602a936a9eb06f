package vrrp

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDroppedPacketsAreLoggedOncePerReasonPerIntervalWithACount(t *testing.T) {
	h := newHarness(t)
	a := h.add(instanceConfig("a", 100), addrLow, nil)
	h.start(a)
	good := Advertisement{Version: 3, VRID: 51, Priority: 200, Interval: time.Second, Addrs: []netip.Addr{vip.Addr()}}
	badTTL := advertFrom(t, good, addrMid, GroupIPv4)
	badTTL.info.HopLimit = 64
	badSum := advertFrom(t, good, addrMid, GroupIPv4)
	badSum.msg[6]++
	other := good
	other.VRID = 52
	otherVRID := advertFrom(t, other, addrMid, GroupIPv4)

	lines := func() []string {
		var out []string
		re := regexp.MustCompile(`level=(\w+) msg="dropping VRRP packet" .*reason=(\w+) from=(\S+) suppressed=(\d+)`)
		for _, l := range strings.Split(a.logs.String(), "\n") {
			if m := re.FindStringSubmatch(l); m != nil {
				out = append(out, strings.Join(m[1:], " "))
			}
		}
		return out
	}
	const flood = 300
	for range flood {
		inject(h, a, badTTL)
		inject(h, a, badSum)
		inject(h, a, otherVRID)
	}
	want := []string{
		"WARN ttl " + addrMid.String() + " 0",
		"WARN checksum " + addrMid.String() + " 0",
		"DEBUG vrid " + addrMid.String() + " 0",
	}
	if diff := cmp.Diff(want, lines()); diff != "" {
		t.Fatalf("log lines after %d of each (-want +got):\n%s", flood, diff)
	}
	// A minute on, the next one of a reason is logged with what was not.
	h.advance(logEvery)
	inject(h, a, badSum)
	want = append(want, fmt.Sprintf("WARN checksum %s %d", addrMid, flood-1))
	if diff := cmp.Diff(want, lines()); diff != "" {
		t.Errorf("log lines a minute later (-want +got):\n%s", diff)
	}
}
