package config

// The names of DESIGN.md's TOML tables and keys. The decoder (schema.go),
// Render and `vrrplb convert` spell every name through these constants, so a
// key is added or renamed here and nowhere else. A new key: name it here,
// read it in schema.go, write it in render.go (convert writes it when an
// input maps to it).

// Tables. Sub-tables are named within their parent: [[instance.track_frontend]]
// is TableInstance + "." + TableTrackFrontend (see Dotted).
const (
	TableAdmin          = "admin"
	TableLog            = "log"
	TableScripts        = "scripts"
	TableInstance       = "instance"
	TableTrackFrontend  = "track_frontend"
	TableTrackScript    = "track_script"
	TableTrackInterface = "track_interface"
	TableFrontend       = "frontend"
	TableHealth         = "health"
	TableBGP            = "bgp"
	TablePeer           = "peer" // [[bgp.peer]]
	TableAnnounce       = "announce"
)

// [admin]
const (
	KeyAdminListen = "listen"
	KeyAdminSocket = "socket"
)

// [log]
const (
	KeyLogLevel  = "level"
	KeyLogFormat = "format"
)

// [scripts]
const (
	KeyScriptsUser = "user"
)

// [[instance]]
const (
	KeyInstanceName            = "name"
	KeyInstanceInterface       = "interface"
	KeyInstanceVirtualRouterID = "virtual_router_id"
	KeyInstancePriority        = "priority"
	KeyInstanceVersion         = "version"
	KeyInstanceAdvertInterval  = "advert_interval"
	KeyInstancePreempt         = "preempt"
	KeyInstancePreemptDelay    = "preempt_delay"
	KeyInstanceVirtualIPs      = "virtual_ips"
	KeyInstanceSourceIP        = "source_ip"
	KeyInstanceUnicastPeers    = "unicast_peers"
	KeyInstanceAuthPass        = "auth_pass"
	KeyInstanceGARPRepeat      = "garp_repeat"
	KeyInstanceGARPInterval    = "garp_interval"
	KeyInstanceGARPRefresh     = "garp_refresh"
	KeyInstanceNotify          = "notify"
	KeyInstanceTakeoverReset   = "takeover_reset"
	KeyInstanceTakeoverKeyFile = "takeover_key_file"
	KeyInstanceTakeoverPort    = "takeover_port"
)

// [[instance.track_frontend]], [[instance.track_interface]]
const (
	KeyTrackName   = "name"
	KeyTrackWeight = "weight"
)

// [[instance.track_script]] (and its weight, KeyTrackWeight)
const (
	KeyTrackScriptCommand  = "command"
	KeyTrackScriptInterval = "interval"
	KeyTrackScriptTimeout  = "timeout"
	KeyTrackScriptFall     = "fall"
	KeyTrackScriptRise     = "rise"
)

// [[frontend]]
const (
	KeyFrontendName               = "name"
	KeyFrontendListen             = "listen"
	KeyFrontendBalance            = "balance"
	KeyFrontendBackends           = "backends"
	KeyFrontendConnectTimeout     = "connect_timeout"
	KeyFrontendRetries            = "retries"
	KeyFrontendIdleTimeout        = "idle_timeout"
	KeyFrontendTCPKeepAlive       = "tcp_keepalive"
	KeyFrontendDrainTimeout       = "drain_timeout"
	KeyFrontendCloseOnBackendDown = "close_on_backend_down"
	KeyFrontendMaxConnections     = "max_connections"
	KeyFrontendFailOpen           = "fail_open"
)

// [frontend.health]
const (
	KeyHealthType         = "type"
	KeyHealthPath         = "path"
	KeyHealthExpectStatus = "expect_status"
	KeyHealthInterval     = "interval"
	KeyHealthTimeout      = "timeout"
	KeyHealthRise         = "rise"
	KeyHealthFall         = "fall"
	KeyHealthCAFile       = "ca_file"
	KeyHealthServerName   = "server_name"
	KeyHealthCertFile     = "cert_file"
	KeyHealthKeyFile      = "key_file"
)

// [bgp]
const (
	KeyBGPLocalASN         = "local_asn"
	KeyBGPRouterID         = "router_id"
	KeyBGPHoldTime         = "hold_time"
	KeyBGPConnectRetry     = "connect_retry"
	KeyBGPGracefulShutdown = "graceful_shutdown"
)

// [[bgp.peer]]
const (
	KeyPeerAddress      = "address"
	KeyPeerASN          = "asn"
	KeyPeerPort         = "port"
	KeyPeerPassword     = "password"
	KeyPeerSourceIP     = "source_ip"
	KeyPeerEBGPMultihop = "ebgp_multihop"
)

// [[announce]] (and [[announce.track_frontend]]'s name, KeyTrackName)
const (
	KeyAnnounceName                 = "name"
	KeyAnnouncePrefixes             = "prefixes"
	KeyAnnounceCommunities          = "communities"
	KeyAnnouncePrependWhenUnhealthy = "prepend_when_unhealthy"
)

// Dotted joins table names into the header of a sub-table: Dotted(TableInstance,
// TableTrackScript) is "instance.track_script".
func Dotted(tables ...string) string {
	s := ""
	for i, t := range tables {
		if i > 0 {
			s += "."
		}
		s += t
	}
	return s
}
