package nginx

import (
	"strings"

	"github.com/vrrplb/vrrplb/config"
)

// context names a kind of block whose directives are checked.
type context int

const (
	ctxMain context = iota
	ctxStream
	ctxUpstream
	ctxServer
	ctxOther // http, events, mail, map, ...: not checked
)

// known lists the directives of each checked context: whether each is a
// block, and the context of its block. A name ending in '*' is a prefix
// (ssl_*, js_*): those modules have dozens of directives, each a plain line.
type spec struct {
	block bool
	sub   context
}

var known = map[context]map[string]spec{
	ctxMain: {
		"user": {}, "worker_processes": {}, "pid": {}, "error_log": {}, "include": {},
		"load_module": {}, "worker_rlimit_nofile": {}, "worker_rlimit_core": {}, "env": {},
		"daemon": {}, "master_process": {}, "pcre_jit": {}, "worker_cpu_affinity": {},
		"worker_priority": {}, "worker_shutdown_timeout": {}, "lock_file": {},
		"timer_resolution": {}, "ssl_engine": {}, "working_directory": {}, "debug_points": {},
		"google_perftools_profiles": {}, "quic_bpf": {}, "thread_pool": {},
		"events": {block: true, sub: ctxOther},
		"http":   {block: true, sub: ctxOther},
		"mail":   {block: true, sub: ctxOther},
		"stream": {block: true, sub: ctxStream},
		// A file included inside stream { } holds upstream and server blocks
		// at its top level.
		"upstream": {block: true, sub: ctxUpstream},
		"server":   {block: true, sub: ctxServer},
	},
	ctxStream: {
		"upstream":      {block: true, sub: ctxUpstream},
		"server":        {block: true, sub: ctxServer},
		"map":           {block: true, sub: ctxOther},
		"geo":           {block: true, sub: ctxOther},
		"split_clients": {block: true, sub: ctxOther},
		"include":       {}, "access_log": {}, "error_log": {}, "log_format": {},
		"open_log_file_cache": {}, "resolver": {}, "resolver_timeout": {},
		"tcp_nodelay": {}, "allow": {}, "deny": {}, "set_real_ip_from": {},
		"variables_hash_max_size": {}, "variables_hash_bucket_size": {},
		"server_names_hash_max_size": {}, "server_names_hash_bucket_size": {},
		"keyval": {}, "keyval_zone": {}, "ssl_preread": {},
		"ssl_*": {}, "js_*": {}, "limit_conn*": {}, "geoip_*": {},
		"preread_*": {}, "zone_sync*": {},
	},
	ctxUpstream: {
		"server": {}, "least_conn": {}, "least_time": {}, "hash": {}, "random": {},
		"zone": {}, "resolver": {}, "resolver_timeout": {}, "state": {}, "include": {},
	},
	ctxServer: {
		"listen": {}, "server_name": {}, "proxy_pass": {}, "pass": {}, "access_log": {},
		"error_log": {}, "allow": {}, "deny": {}, "return": {}, "set": {},
		"tcp_nodelay": {}, "resolver": {}, "resolver_timeout": {}, "ssl_preread": {},
		"health_check": {}, "health_check_timeout": {}, "status_zone": {}, "include": {},
		"set_real_ip_from": {},
		"ssl_*":            {}, "js_*": {}, "limit_conn*": {}, "preread_*": {},
		"zone_sync*": {}, "mqtt*": {},
	},
}

// proxyDirectives are the directives of ngx_stream_proxy_module, valid in
// stream and server blocks; listed one by one so that a typo in the most
// common of them (proxy_pass, proxy_timeout) is caught.
var proxyDirectives = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`proxy_bind proxy_buffer_size proxy_connect_timeout proxy_download_rate proxy_half_close proxy_next_upstream proxy_next_upstream_timeout proxy_next_upstream_tries proxy_pass proxy_protocol proxy_requests proxy_responses proxy_session_drop proxy_socket_keepalive proxy_ssl proxy_ssl_certificate proxy_ssl_certificate_cache proxy_ssl_certificate_key proxy_ssl_ciphers proxy_ssl_conf_command proxy_ssl_crl proxy_ssl_key_log proxy_ssl_name proxy_ssl_password_file proxy_ssl_protocols proxy_ssl_server_name proxy_ssl_session_reuse proxy_ssl_trusted_certificate proxy_ssl_verify proxy_ssl_verify_depth proxy_timeout proxy_upload_rate`) {
		proxyDirectives[n] = true
	}
}

func lookup(ctx context, name string) (spec, bool) {
	if (ctx == ctxStream || ctx == ctxServer) && proxyDirectives[name] {
		return spec{}, true
	}
	names := known[ctx]
	if s, ok := names[name]; ok {
		return s, true
	}
	for k, s := range names {
		if p, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(name, p) {
			return s, true
		}
	}
	return spec{}, false
}

// check rejects directives nginx does not know in the contexts vrrplb imports,
// and a block where a plain directive is expected (or the reverse).
func check(ds []*Directive, ctx context) error {
	if ctx == ctxOther {
		return nil
	}
	for _, d := range ds {
		s, ok := lookup(ctx, d.Name)
		if !ok {
			return d.Errorf("unknown directive %s", config.Word(d.Name))
		}
		if s.block && !d.IsBlock {
			return d.Errorf(`directive %s has no opening "{"`, config.Word(d.Name))
		}
		if !s.block && d.IsBlock {
			return d.Errorf(`directive %s is not a block`, config.Word(d.Name))
		}
		if s.block {
			if err := check(d.Children, s.sub); err != nil {
				return err
			}
		}
	}
	return nil
}
