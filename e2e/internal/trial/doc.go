// Package trial runs a piece of a benchmark program against the e2e lab, as
// a test runs against it: it is the lab's TB for programs, where Fatal ends
// the trial rather than the program and cleanups run when the trial ends.
// It is not for tests, which pass their testing.TB.
package trial
