package main

import "github.com/vrrplb/vrrplb/internal/syncbuf"

// syncBuffer is a log sink that tests read while the code under test writes.
type syncBuffer = syncbuf.Buffer
