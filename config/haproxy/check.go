package haproxy

import "github.com/vrrplb/vrrplb/config"

// proxyKeywords are the keywords haproxy accepts in defaults, frontend,
// backend and listen sections. Not every keyword is valid in every one of
// them; haproxy itself says which, and vrrplb only needs to tell a typo from a
// keyword it does not import.
var proxyKeywords = map[string]bool{
	"acl": true, "backlog": true, "balance": true, "bind": true, "capture": true,
	"clitcpka-cnt": true, "clitcpka-idle": true, "clitcpka-intvl": true,
	"compression": true, "cookie": true, "declare": true, "default-server": true,
	"default_backend": true, "description": true, "disabled": true, "dispatch": true,
	"email-alert": true, "enabled": true, "errorfile": true, "errorfiles": true,
	"errorloc": true, "errorloc302": true, "errorloc303": true, "external-check": true,
	"filter": true, "force-persist": true, "fullconn": true, "guid": true, "hash-balance-factor": true,
	"hash-key": true, "hash-type": true, "http-after-response": true, "http-check": true,
	"http-error": true, "http-request": true, "http-response": true, "http-reuse": true,
	"http-send-name-header": true, "id": true, "ignore-persist": true,
	"load-server-state-from-file": true, "log": true, "log-format": true,
	"log-format-sd": true, "log-steps": true, "log-tag": true, "max-keep-alive-queue": true,
	"max-session-srv-conns": true, "maxconn": true, "mode": true, "monitor": true,
	"monitor-uri": true, "option": true, "persist": true, "rate-limit": true,
	"redirect": true, "retries": true, "retry-on": true, "server": true,
	"server-state-file-name": true, "server-template": true, "source": true,
	"srvtcpka-cnt": true, "srvtcpka-idle": true, "srvtcpka-intvl": true,
	"stats": true, "stick": true, "stick-table": true, "tcp-check": true,
	"tcp-request": true, "tcp-response": true, "timeout": true, "transparent": true,
	"unique-id-format": true, "unique-id-header": true, "use-fcgi-app": true,
	"use-server": true, "use_backend": true, "contimeout": true, "clitimeout": true,
	"srvtimeout": true, "grace": true, "error-log-format": true, "quic-initial": true,
}

// checkLine rejects an unknown keyword in a proxy section.
func checkLine(kind string, l *Line) error {
	switch kind {
	case "defaults", "frontend", "backend", "listen":
	default:
		return nil // global and the other sections are not checked
	}
	kw := l.Keyword()
	if proxyKeywords[kw] {
		return nil
	}
	return l.Errorf("unknown keyword %s in %s section", config.Word(kw), kind)
}
