package keepalived

import "strings"

// context names a kind of block whose keywords are checked.
type context int

const (
	ctxTop context = iota
	ctxInstance
	ctxScript
	ctxAuth
	ctxProcess
)

// form says what shape a keyword takes and how its block is checked.
type form int

const (
	line      form = iota // a plain line
	block                 // a block whose lines are free-form (addresses, names)
	lineOrAny             // either; contents not checked
	blockOf               // a block checked in its own context (see sub)
)

type rule struct {
	form form
	sub  context
}

// keywords lists, per checked context, what keepalived accepts there. Blocks
// vrrplb does not import (virtual_server, vrrp_sync_group, ...) are known so
// that they can be reported as not carried over, but their contents are not
// checked. global_defs is not checked at all: every keyword in it is either
// mapped or reported.
var keywords = map[context]map[string]rule{
	ctxTop: {
		"global_defs":              {form: lineOrAny},
		"vrrp_script":              {form: blockOf, sub: ctxScript},
		"vrrp_instance":            {form: blockOf, sub: ctxInstance},
		"include":                  {form: line},
		"vrrp_sync_group":          {form: lineOrAny},
		"virtual_server":           {form: lineOrAny},
		"virtual_server_group":     {form: lineOrAny},
		"static_ipaddress":         {form: lineOrAny},
		"static_routes":            {form: lineOrAny},
		"static_rules":             {form: lineOrAny},
		"garp_group":               {form: lineOrAny},
		"vrrp_track_file":          {form: lineOrAny},
		"track_file":               {form: lineOrAny},
		"vrrp_track_process":       {form: blockOf, sub: ctxProcess},
		"track_process":            {form: lineOrAny},
		"linkbeat_use_polling":     {form: lineOrAny},
		"net_namespace":            {form: lineOrAny},
		"instance":                 {form: lineOrAny},
		"use_pid_dir":              {form: lineOrAny},
		"bfd_instance":             {form: lineOrAny},
		"track_group":              {form: lineOrAny},
		"linkbeat_interfaces":      {form: lineOrAny},
		"interface_up_down_delays": {form: lineOrAny},
		"child_wait_time":          {form: lineOrAny},
		"namespace_with_ipsets":    {form: lineOrAny},
		"net_namespace_ipvs":       {form: lineOrAny},
		"SSL":                      {form: lineOrAny},
		"$":                        {form: lineOrAny}, // keepalived parameter definitions ($NAME=value)
	},
	ctxScript: {
		"script":    {form: line},
		"interval":  {form: line},
		"timeout":   {form: line},
		"weight":    {form: line},
		"fall":      {form: line},
		"rise":      {form: line},
		"user":      {form: line},
		"init_fail": {form: line},
	},
	ctxProcess: {
		"process":         {form: line},
		"param_match":     {form: line},
		"weight":          {form: line},
		"quorum":          {form: line},
		"quorum_max":      {form: line},
		"delay":           {form: line},
		"terminate_delay": {form: line},
		"fork_delay":      {form: line},
		"full_command":    {form: line},
	},
	ctxAuth: {
		"auth_type": {form: line},
		"auth_pass": {form: line},
	},
	ctxInstance: {
		"state":                      {form: line},
		"interface":                  {form: line},
		"virtual_router_id":          {form: line},
		"priority":                   {form: line},
		"advert_int":                 {form: line},
		"version":                    {form: line},
		"nopreempt":                  {form: line},
		"preempt":                    {form: line},
		"preempt_delay":              {form: line},
		"authentication":             {form: blockOf, sub: ctxAuth},
		"virtual_ipaddress":          {form: block},
		"virtual_ipaddress_excluded": {form: block},
		"virtual_routes":             {form: block},
		"virtual_rules":              {form: block},
		"mcast_src_ip":               {form: line},
		"unicast_src_ip":             {form: line},
		"unicast_peer":               {form: block},
		"track_interface":            {form: block},
		"track_script":               {form: block},
		"track_process":              {form: block},
		"track_file":                 {form: block},
		"track_bfd":                  {form: block},
		"notify":                     {form: line},
		"notify_master":              {form: line},
		"notify_backup":              {form: line},
		"notify_fault":               {form: line},
		"notify_stop":                {form: line},
		"notify_deleted":             {form: line},
		"notify_master_rx_lower_pri": {form: line},
		"smtp_alert":                 {form: line},
		"garp_master_delay":          {form: line},
		"garp_master_repeat":         {form: line},
		"garp_master_refresh":        {form: line},
		"garp_master_refresh_repeat": {form: line},
		"garp_lower_prio_delay":      {form: line},
		"garp_lower_prio_repeat":     {form: line},
		"garp_interval":              {form: line},
		"gna_interval":               {form: line},
		"lower_prio_no_advert":       {form: line},
		"higher_prio_send_advert":    {form: line},
		"accept":                     {form: line},
		"no_accept":                  {form: line},
		"strict_mode":                {form: line},
		"dont_track_primary":         {form: line},
		"use_vmac":                   {form: line},
		"vmac_xmit_base":             {form: line},
		"native_ipv6":                {form: line},
		"debug":                      {form: line},
		"unicast_ttl":                {form: line},
		"unicast_fault_no_peer":      {form: line},
		"check_unicast_src":          {form: line},
		"skip_check_adv_addr":        {form: line},
		"kernel_rx_buf_size":         {form: line},
		"down_timer_adverts":         {form: line},
		"track_src_ip":               {form: line},
		"mcast_dst_ip":               {form: line},
		"ttl":                        {form: line},
		"promote_secondaries":        {form: line},
		"vrrp_sync_group":            {form: line},
		"no_accept_ttl":              {form: line},
		"linkbeat_use_polling":       {form: line},
		"old_unicast_checksum":       {form: line},
		"garp_extra_if":              {form: line},
		"lvs_sync_daemon_interface":  {form: line},
		"notify_priority_changes":    {form: line},
		"use_ipvlan":                 {form: line},
		"use_vmac_addr":              {form: line},
		"vmac_garp_intvl":            {form: line},
		"vrf":                        {form: line},
	},
}

// check marks, in the contexts vrrplb imports, keywords keepalived does not
// know (Node.Unknown), and rejects blocks given where a line is expected (or
// the reverse).
func check(nodes []*Node, ctx context) error {
	known := keywords[ctx]
	for _, n := range nodes {
		kw := n.Keyword()
		if strings.HasPrefix(kw, "$") || strings.HasPrefix(kw, "~") {
			continue // parameter definitions, ~SEQ and ~LST
		}
		r, ok := known[kw]
		if !ok {
			// keepalived logs an unknown keyword and goes on.
			n.Unknown = true
			continue
		}
		switch r.form {
		case line:
			if n.IsBlock {
				return n.Errorf("%s takes no { } block", kw)
			}
		case block:
			if !n.IsBlock {
				return n.Errorf("%s needs a { } block", kw)
			}
		case blockOf:
			if !n.IsBlock {
				return n.Errorf("%s needs a { } block", kw)
			}
			if err := check(n.Children, r.sub); err != nil {
				return err
			}
		}
	}
	return nil
}
