package config

import (
	"log/slog"
	"net/netip"
	"time"
)

// DefaultPath is where `vrrplb run` and `vrrplb check` look without --config.
const DefaultPath = "/etc/vrrplb/vrrplb.toml"

// Config is a validated vrrplb configuration with every default filled in.
type Config struct {
	// Path is the file the configuration was read from ("" when parsed from memory).
	Path string
	// Source is the text that was parsed: what another process must parse
	// to see this very config, even if the file has changed since.
	Source []byte

	Admin     Admin
	Log       Log
	Scripts   Scripts
	Instances []Instance
	Frontends []Frontend
	// BGP is [bgp]; its LocalASN is 0 when the table is absent.
	BGP       BGP
	Announces []Announce
}

// Admin is the admin HTTP server (/metrics, /healthz and /status, read
// only) and the admin socket, where runtime commands come in.
type Admin struct {
	// Listen is host:port; "" disables the admin server.
	Listen string
	// Socket is the absolute path of the admin unix socket; "" disables it.
	Socket string
}

// Log says how the daemon logs.
type Log struct {
	Level  slog.Level
	Format LogFormat
}

// LogFormat is "text" or "json".
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// Scripts says how track scripts and notify commands run.
type Scripts struct {
	// User runs scripts as this user; "" runs them as the daemon's own user.
	User string
}

// Family is an address family: the family of an instance's virtual IPs.
type Family int

// Address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// FamilyOf returns the family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() || a.Is4In6() {
		return IPv4
	}
	return IPv6
}

// Instance is one VRRP virtual router (keepalived: vrrp_instance).
type Instance struct {
	Name            string
	Interface       string
	VirtualRouterID uint8
	// Priority is 1..255; 255 means the address owner.
	Priority uint8
	// Version is 2 (RFC 3768) or 3 (RFC 5798).
	Version        int
	AdvertInterval time.Duration
	Preempt        bool
	PreemptDelay   time.Duration
	// VirtualIPs are the addresses the master holds, all of Family.
	VirtualIPs []netip.Prefix
	Family     Family
	// SourceIP is the advert source; the zero Addr means the interface's primary
	// address of Family.
	SourceIP netip.Addr
	// UnicastPeers, when non-empty, receive adverts by unicast instead of multicast.
	UnicastPeers []netip.Addr
	// AuthPass is the v2 simple text password; "" means no authentication.
	AuthPass     string
	GARPRepeat   int
	GARPInterval time.Duration
	// GARPRefresh re-announces the VIPs this often while master; 0 never.
	GARPRefresh time.Duration
	// Notify is run on every transition with (instance name, new state) appended.
	Notify []string
	// TakeoverReset streams the master's client connections on the virtual
	// IPs to the other LB hosts, and has a host that takes over from a
	// silent (crashed) master prompt those clients to reset. It works only
	// with TakeoverKey.
	TakeoverReset bool
	// TakeoverKeyFile is the file TakeoverKey was read from; "" for none.
	TakeoverKeyFile string
	// TakeoverKey authenticates the stream (HMAC-SHA256): the same on every
	// LB host of the instance. Nil without takeover_key_file.
	TakeoverKey []byte
	// TakeoverPort is the UDP port of the stream.
	TakeoverPort uint16

	TrackFrontends  []TrackFrontend
	TrackScripts    []TrackScript
	TrackInterfaces []TrackInterface
}

// Key identifies an instance across reloads: (virtual_router_id, interface, family).
type InstanceKey struct {
	VirtualRouterID uint8
	Interface       string
	Family          Family
}

// Key returns the identity that a reload matches instances by.
func (in Instance) Key() InstanceKey {
	return InstanceKey{VirtualRouterID: in.VirtualRouterID, Interface: in.Interface, Family: in.Family}
}

// TrackFrontend ties an instance to the health of one of this daemon's frontends.
type TrackFrontend struct {
	Name string
	// Weight 0 makes the instance yield while the frontend has no healthy
	// backend: hand the VIP over and stay in the election at the lowest
	// priority; a negative weight is subtracted from the priority instead.
	Weight int
}

// TrackScript is a command whose exit status the instance tracks.
type TrackScript struct {
	Command  []string
	Interval time.Duration
	Timeout  time.Duration
	Fall     int
	Rise     int
	// Weight 0: FAULT while failing; < 0: subtracted while failing; > 0: added while passing.
	Weight int
}

// TrackInterface ties an instance to the link state of an interface.
type TrackInterface struct {
	Name string
	// Weight 0: FAULT while down; < 0: subtracted while down.
	Weight int
}

// Balance is a frontend's backend selection policy.
type Balance string

// Balancing policies.
const (
	LeastConn  Balance = "leastconn"
	RoundRobin Balance = "roundrobin"
	Source     Balance = "source"
	Random2    Balance = "random2"
)

// Frontend is one TCP listener proxying to a set of backends.
type Frontend struct {
	Name    string
	Listen  string
	Balance Balance
	// Backends are host:port addresses, in the order configured.
	Backends       []string
	ConnectTimeout time.Duration
	// Retries is how many other healthy backends are tried after a failed connect.
	Retries int
	// IdleTimeout closes a connection idle this long; 0 means never.
	IdleTimeout  time.Duration
	TCPKeepAlive time.Duration
	DrainTimeout time.Duration
	// CloseOnBackendDown cuts the connections of a backend that goes down.
	CloseOnBackendDown bool
	// MaxConnections caps concurrent client connections; 0 means unlimited.
	MaxConnections int
	// FailOpen sends new connections to every backend while none is
	// healthy, rather than refusing them.
	FailOpen bool
	Health   Health
}

// HealthType is the kind of active check.
type HealthType string

// Health check types.
const (
	CheckTCP   HealthType = "tcp"
	CheckTLS   HealthType = "tls"
	CheckHTTP  HealthType = "http"
	CheckHTTPS HealthType = "https"
	CheckNone  HealthType = "none"
)

// Health is a frontend's active check of its backends.
type Health struct {
	Type         HealthType
	Path         string
	ExpectStatus []int
	Interval     time.Duration
	Timeout      time.Duration
	Rise         int
	Fall         int
	// CAFile verifies the backend certificate; "" skips verification.
	CAFile     string
	ServerName string
	// CertFile and KeyFile are the client certificate that tls and https
	// checks present (apiservers with --anonymous-auth=false); "" none.
	CertFile string
	KeyFile  string
}

// Frontend returns the frontend called name, if there is one.
func (c *Config) Frontend(name string) (Frontend, bool) {
	for _, f := range c.Frontends {
		if f.Name == name {
			return f, true
		}
	}
	return Frontend{}, false
}
