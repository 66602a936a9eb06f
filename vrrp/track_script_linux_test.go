package vrrp

import (
	"testing"
	"time"

	"github.com/vrrplb/vrrplb/config"
)

func TestScriptTrackerRunsAsTheScriptsUser(t *testing.T) {
	requireRoot(t, "creates network namespaces and raw sockets")
	isNobody := []string{"/bin/sh", "-c", `test "$(id -u)" = 65534`}
	for _, tt := range []struct {
		name string
		user string
		want bool
	}{
		{name: "with a user the script runs as that user", user: "nobody", want: true},
		{name: "without a user the script runs as the daemon's user", user: "", want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := NewScriptTracker(config.TrackScript{Command: isNobody, Interval: time.Second, Timeout: 5 * time.Second},
				ScriptOptions{User: tt.user, Clock: never()})
			if err != nil {
				t.Fatal(err)
			}
			if got := firstReport(t, tr); got != tt.want {
				t.Errorf("runs as nobody = %v, want %v", got, tt.want)
			}
		})
	}
}
