package clock

import (
	"context"
	"testing"
	"time"
)

type other struct{ Clock }

func TestOrIsSystemForNil(t *testing.T) {
	if Or(nil) != System {
		t.Error("Or(nil) is not System")
	}
	o := other{}
	if Or(o) != Clock(o) {
		t.Error("Or(c) is not c")
	}
}

func TestSystemTimersFire(t *testing.T) {
	tm := System.NewTimer(time.Millisecond)
	select {
	case <-tm.C():
	case <-time.After(5 * time.Second):
		t.Fatal("a 1ms system timer did not fire")
	}
	if tm.Stop() {
		t.Error("Stop after the fire was received = true, want false")
	}
	ran := make(chan struct{})
	System.AfterFunc(time.Millisecond, func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("a 1ms AfterFunc did not run")
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, System, time.Hour) {
		t.Error("Sleep with an ended context = true, want false")
	}
	if !Sleep(context.Background(), System, time.Millisecond) {
		t.Error("Sleep for 1ms = false, want true")
	}
}
