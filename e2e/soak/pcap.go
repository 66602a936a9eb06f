package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

// readPcap returns the timestamps of the packets in a pcap file written by
// tcpdump, in microsecond or nanosecond precision, either byte order.
func readPcap(path string) ([]time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read capture: %w", err)
	}
	if len(b) < 24 {
		return nil, fmt.Errorf("capture %s: %d bytes, no pcap header", path, len(b))
	}
	var (
		order binary.ByteOrder
		unit  time.Duration
	)
	for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		switch o.Uint32(b) {
		case 0xa1b2c3d4:
			order, unit = o, time.Microsecond
		case 0xa1b23c4d:
			order, unit = o, time.Nanosecond
		}
	}
	if order == nil {
		return nil, fmt.Errorf("capture %s: not a pcap file (magic %x)", path, b[:4])
	}
	var ts []time.Time
	for off := 24; off+16 <= len(b); {
		sec := order.Uint32(b[off:])
		frac := order.Uint32(b[off+4:])
		incl := int(order.Uint32(b[off+8:]))
		ts = append(ts, time.Unix(int64(sec), int64(frac)*int64(unit)))
		off += 16 + incl
	}
	return ts, nil
}
