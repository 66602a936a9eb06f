package keepalived

import (
	"strings"
	"testing"
)

// The keywords keepalived 2.2.7 installs (keepalived/vrrp/vrrp_parser.c,
// track_file.c, check_parser.c, bfd_parser.c, core/global_parser.c): what it
// runs must parse here, with nothing marked unknown.
const (
	ka227Top      = "global_defs vrrp_instance vrrp_script vrrp_track_process vrrp_sync_group static_ipaddress static_routes static_rules track_group garp_group linkbeat_interfaces interface_up_down_delays vrrp_track_file track_file virtual_server virtual_server_group bfd_instance net_namespace net_namespace_ipvs namespace_with_ipsets instance use_pid_dir linkbeat_use_polling child_wait_time SSL"
	ka227Instance = "accept advert_int authentication check_unicast_src debug dont_track_primary down_timer_adverts garp_extra_if garp_lower_prio_delay garp_lower_prio_repeat garp_master_delay garp_master_refresh garp_master_refresh_repeat garp_master_repeat higher_prio_send_advert interface kernel_rx_buf_size linkbeat_use_polling lower_prio_no_advert lvs_sync_daemon_interface mcast_dst_ip mcast_src_ip native_ipv6 no_accept nopreempt notify notify_backup notify_deleted notify_fault notify_master notify_master_rx_lower_pri notify_priority_changes notify_stop old_unicast_checksum preempt preempt_delay priority promote_secondaries skip_check_adv_addr smtp_alert state strict_mode track_bfd track_file track_interface track_process track_script track_src_ip unicast_fault_no_peer unicast_peer unicast_src_ip unicast_ttl use_ipvlan use_vmac use_vmac_addr version virtual_ipaddress virtual_ipaddress_excluded virtual_router_id virtual_routes virtual_rules vmac_garp_intvl vmac_xmit_base vrf "
	ka227Auth     = "auth_type auth_pass"
	ka227Script   = "script interval timeout weight rise fall user init_fail"
	ka227Process  = "process param_match weight quorum quorum_max delay terminate_delay fork_delay full_command"
)

func TestEveryKeepalived227KeywordIsKnown(t *testing.T) {
	for ctx, list := range map[context]string{ctxTop: ka227Top, ctxInstance: ka227Instance, ctxScript: ka227Script, ctxProcess: ka227Process, ctxAuth: ka227Auth} {
		for _, kw := range strings.Fields(list) {
			if _, ok := keywords[ctx][kw]; !ok {
				t.Errorf("context %d: keepalived 2.2.7's keyword %q is not known", ctx, kw)
			}
		}
	}
}
