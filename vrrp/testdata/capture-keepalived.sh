#!/bin/sh
# Captures VRRP advertisements sent by a real keepalived, for the codec's
# golden tests (keepalived.hex). Needs root, keepalived, tcpdump, python3.
#
# Two network namespaces joined by a veth pair: keepalived runs alone in the
# first (so it becomes master of every instance after its down interval) and
# tcpdump records what it sends. The second namespace only answers ARP for the
# unicast peer. Everything is removed on exit.
#
#   sudo sh vrrp/testdata/capture-keepalived.sh > vrrp/testdata/keepalived.hex
set -eu

tag="vk$$"
nsa="${tag}a" nsb="${tag}b"
dir=$(mktemp -d)
cleanup() {
	[ -f "$dir/keepalived.pid" ] && kill "$(cat "$dir/keepalived.pid")" 2>/dev/null || true
	[ -f "$dir/tcpdump.pid" ] && kill "$(cat "$dir/tcpdump.pid")" 2>/dev/null || true
	sleep 0.5
	ip netns del "$nsa" 2>/dev/null || true
	ip netns del "$nsb" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

ip netns add "$nsa"
ip netns add "$nsb"
ip link add "${tag}x" netns "$nsa" type veth peer name "${tag}y" netns "$nsb"
for ns in "$nsa" "$nsb"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip netns exec "$ns" ip link set lo up
done
ip -n "$nsa" addr add 192.0.2.1/24 dev "${tag}x"
ip -n "$nsa" addr add fe80::1/64 dev "${tag}x"
ip -n "$nsb" addr add 192.0.2.2/24 dev "${tag}y"
ip -n "$nsa" link set "${tag}x" up
ip -n "$nsb" link set "${tag}y" up

cat > "$dir/keepalived.conf" <<CONF
global_defs {
    router_id vrrplb_capture
}
vrrp_instance v2_pass {
    interface ${tag}x
    version 2
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass vrrplb12
    }
    virtual_ipaddress {
        192.0.2.100/24
    }
}
vrrp_instance v3_ipv4 {
    interface ${tag}x
    version 3
    virtual_router_id 52
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.101/24
        192.0.2.102/24
    }
}
vrrp_instance v3_ipv6 {
    interface ${tag}x
    version 3
    virtual_router_id 53
    priority 200
    advert_int 0.5
    virtual_ipaddress {
        fe80::53/64
        2001:db8::53/64
    }
}
vrrp_instance v3_unicast {
    interface ${tag}x
    version 3
    virtual_router_id 54
    priority 120
    advert_int 1
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    virtual_ipaddress {
        192.0.2.104/24
    }
}
CONF

ip netns exec "$nsa" tcpdump -U -n -i "${tag}x" -w "$dir/vrrp.pcap" 'ip proto 112 or ip6 proto 112' 2>/dev/null &
echo $! > "$dir/tcpdump.pid"
ip netns exec "$nsa" /usr/sbin/keepalived --vrrp --dont-fork --log-console --no-syslog \
	-f "$dir/keepalived.conf" -p "$dir/keepalived.pid" -r "$dir/vrrp.pid" >"$dir/keepalived.log" 2>&1 &
sleep 7
# SIGTERM: keepalived leaves mastership with priority-0 adverts.
kill "$(cat "$dir/keepalived.pid")"
sleep 1
kill "$(cat "$dir/tcpdump.pid")"
sleep 0.5
python3 - "$dir/vrrp.pcap" "$(/usr/sbin/keepalived --version 2>&1 | head -1)" <<'PY'
import ipaddress, struct, sys
data = open(sys.argv[1], "rb").read()
print("# VRRP messages sent by %s, captured with tcpdump by capture-keepalived.sh." % sys.argv[2])
print("# One per line: name src dst hex (the IP payload, checksum as sent).")
seen = {}
off = 24
while off + 16 <= len(data):
    _, _, caplen, _ = struct.unpack("<IIII", data[off:off+16])
    pkt = data[off+16:off+16+caplen]
    off += 16 + caplen
    eth = pkt[14:]
    if pkt[12:14] == b"\x08\x00":
        ihl = (eth[0] & 0x0f) * 4
        total = struct.unpack("!H", eth[2:4])[0]
        src, dst, msg = ipaddress.ip_address(eth[12:16]), ipaddress.ip_address(eth[16:20]), eth[ihl:total]
    elif pkt[12:14] == b"\x86\xdd":
        plen = struct.unpack("!H", eth[4:6])[0]
        src, dst, msg = ipaddress.ip_address(eth[8:24]), ipaddress.ip_address(eth[24:40]), eth[40:40+plen]
    else:
        continue
    version, vrid, prio = msg[0] >> 4, msg[1], msg[2]
    name = {51: "v2_pass", 52: "v3_ipv4", 53: "v3_ipv6", 54: "v3_unicast"}.get(vrid, "vrid%d" % vrid)
    if prio == 0:
        name += "_priority0"
    if (name, msg) in seen:
        continue
    seen[(name, msg)] = True
    print(name, src, dst, msg.hex())
PY
