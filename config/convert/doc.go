// Package convert turns a working keepalived.conf, nginx stream block or
// haproxy.cfg into an equivalent vrrplb.toml: the parsers in config/keepalived,
// config/nginx and config/haproxy read the inputs, this package maps what they
// mean to vrrplb's keys and renders TOML whose comments say, for every setting
// that could not be carried over, what it was and why. It behaves like the
// inputs where vrrplb can (priorities, timers, weights, keepalived's own rules
// for state MASTER and nopreempt) and says so where vrrplb deliberately differs
// (active /readyz checks instead of process checks, no idle timeout). It does not
// validate the result: `vrrplb check` (config.Parse) does.
package convert
