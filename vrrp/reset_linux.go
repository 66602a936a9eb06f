package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// Netlink sock_diag (linux/sock_diag.h, linux/inet_diag.h).
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	sockDestroy      = 21 // SOCK_DESTROY (CONFIG_INET_DIAG_DESTROY)
	diagReqLen       = 56 // struct inet_diag_req_v2
	diagMsgLen       = 72 // struct inet_diag_msg
	diagSockIDOff    = 8  // the inet_diag_sockid in a request
	diagMsgIDOff     = 4  // the inet_diag_sockid in a message
	diagSockIDLen    = 48
)

// TCP states (include/net/tcp_states.h) a reset skips: a listener is not a
// connection, and a closed or TIME_WAIT socket holds none and sends nothing.
const (
	tcpTimeWait = 6
	tcpClose    = 7
	tcpListen   = 10
)

// resetStates are the TCP states whose sockets are reset, as a bit mask.
const resetStates = 0xfff &^ (1<<tcpTimeWait | 1<<tcpClose | 1<<tcpListen)

// SockDiagResetter is the Linux ConnResetter: it lists the host's TCP
// sockets over netlink sock_diag and destroys those on the address
// (SOCK_DESTROY): the kernel sends each peer an RST and the socket's owner
// gets ECONNABORTED. It needs CAP_NET_ADMIN and a kernel built with
// CONFIG_INET_DIAG_DESTROY (Debian's, Ubuntu's, Fedora's are).
type SockDiagResetter struct{}

// Reset ends every TCP connection whose local address is addr (IPv4 ones on
// dual-stack sockets included) and returns how many it ended.
func (SockDiagResetter) Reset(addr netip.Addr) (int, error) {
	fd, err := diagOpen()
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ids, err := diagSockets(fd, addr)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, id := range ids {
		err := diagDestroy(fd, id)
		switch {
		case err == nil:
			n++
		case errors.Is(err, unix.ENOENT):
			// Gone meanwhile.
		default:
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("destroying %d of %d sockets on %v: %w", len(errs), len(ids), addr, errs[0])
	}
	return n, nil
}

// List returns the TCP connections whose local address is addr (IPv4 ones
// on dual-stack sockets included), as the takeover stream sends them.
func (SockDiagResetter) List(addr netip.Addr) ([]Tuple, error) {
	fd, err := diagOpen()
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	ids, err := diagSockets(fd, addr)
	if err != nil {
		return nil, err
	}
	out := make([]Tuple, 0, len(ids))
	for _, id := range ids {
		out = append(out, diagTuple(id))
	}
	return out, nil
}

// diagOpen opens and binds a sock_diag netlink socket.
func diagOpen() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, fmt.Errorf("sock_diag socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("sock_diag bind: %w", err)
	}
	return fd, nil
}

// diagSockets lists the TCP sockets whose local address is addr, of both
// families for IPv4 (a dual-stack socket holds it v4-mapped), as diagDump
// gives them.
func diagSockets(fd int, addr netip.Addr) ([][]byte, error) {
	addr = addr.Unmap()
	families := []uint8{unix.AF_INET6}
	if addr.Is4() {
		families = []uint8{unix.AF_INET, unix.AF_INET6}
	}
	var ids [][]byte
	for _, fam := range families {
		found, err := diagDump(fd, fam, addr)
		if err != nil {
			return nil, err
		}
		ids = append(ids, found...)
	}
	return ids, nil
}

// diagTuple reads the two ends of a socket from the family byte and
// inet_diag_sockid diagDump gives: ports in network order, then the
// source and destination addresses (16 bytes each; IPv4 in the first 4).
func diagTuple(famID []byte) Tuple {
	id := famID[1:]
	sport, dport := binary.BigEndian.Uint16(id[0:]), binary.BigEndian.Uint16(id[2:])
	var src, dst netip.Addr
	if famID[0] == unix.AF_INET {
		src, dst = netip.AddrFrom4([4]byte(id[4:8])), netip.AddrFrom4([4]byte(id[20:24]))
	} else {
		src, dst = netip.AddrFrom16([16]byte(id[4:20])).Unmap(), netip.AddrFrom16([16]byte(id[20:36])).Unmap()
	}
	return Tuple{Local: netip.AddrPortFrom(src, sport), Remote: netip.AddrPortFrom(dst, dport)}
}

// diagRequest is a netlink message carrying an inet_diag_req_v2.
func diagRequest(typ, flags uint16, seq uint32, req []byte) []byte {
	msg := make([]byte, unix.NLMSG_HDRLEN+len(req))
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	copy(msg[unix.NLMSG_HDRLEN:], req)
	return msg
}

// diagDump lists the TCP sockets of family fam whose local address is
// addr: each as the family byte and its inet_diag_sockid, ready for
// diagDestroy.
func diagDump(fd int, fam uint8, addr netip.Addr) ([][]byte, error) {
	req := make([]byte, diagReqLen)
	req[0], req[1] = fam, unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(req[4:], resetStates)
	msg := diagRequest(sockDiagByFamily, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, 1, req)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag dump: %w", err)
	}
	var want [16]byte
	switch {
	case fam == unix.AF_INET:
		a := addr.As4()
		copy(want[:], a[:])
	default:
		want = addr.As16() // v4-mapped for IPv4 on a dual-stack socket
	}
	var ids [][]byte
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("sock_diag dump: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("sock_diag dump: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return ids, nil
			case unix.NLMSG_ERROR:
				return nil, fmt.Errorf("sock_diag dump: %w", netlinkErr(m.Data))
			}
			if len(m.Data) < diagMsgLen {
				continue
			}
			id := m.Data[diagMsgIDOff : diagMsgIDOff+diagSockIDLen]
			src := id[4:20]
			match := fam == unix.AF_INET && [4]byte(src[:4]) == [4]byte(want[:4]) ||
				fam == unix.AF_INET6 && [16]byte(src) == want
			if match {
				ids = append(ids, append([]byte{m.Data[0]}, id...))
			}
		}
	}
}

// diagDestroy destroys the one socket famID names (family byte, then its
// inet_diag_sockid with cookie) and waits for the kernel's answer.
func diagDestroy(fd int, famID []byte) error {
	req := make([]byte, diagReqLen)
	req[0], req[1] = famID[0], unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(req[4:], 0xfff)
	copy(req[diagSockIDOff:], famID[1:])
	msg := diagRequest(sockDestroy, unix.NLM_F_REQUEST|unix.NLM_F_ACK, 2, req)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sock_diag destroy: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("sock_diag destroy: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return fmt.Errorf("sock_diag destroy: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR {
			return netlinkErr(m.Data)
		}
	}
	return nil
}

// netlinkErr is the errno of an NLMSG_ERROR payload; nil for an ack.
func netlinkErr(data []byte) error {
	if len(data) < 4 {
		return errors.New("short netlink error")
	}
	code := int32(binary.NativeEndian.Uint32(data))
	if code == 0 {
		return nil
	}
	return unix.Errno(-code)
}
