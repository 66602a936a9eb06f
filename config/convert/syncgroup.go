package convert

import (
	"fmt"

	"github.com/vrrplb/vrrplb/config/keepalived"
)

// syncGroup is a vrrp_sync_group: vrrplb has none, so what the group did to
// its instances is done to each of them.
type syncGroup struct {
	node *keepalived.Node
	name string
	// keepWeights says the group has sync_group_tracking_weight (or the
	// older global_tracking): keepalived keeps its members' tracker weights.
	keepWeights bool
	// The group's own trackers: any of them failing puts every member in FAULT.
	scriptLines, ifaceLines, processLines []*keepalived.Node
}

// syncGroups reads the sync groups, by member instance name, and notes in
// res what of them is not carried over.
func syncGroups(nodes []*keepalived.Node, res *keepalivedResult) map[string]*syncGroup {
	out := map[string]*syncGroup{}
	for _, n := range nodes {
		if n.Unknown || n.Keyword() != "vrrp_sync_group" || len(n.Args) < 2 {
			continue
		}
		sg := &syncGroup{node: n, name: n.Args[1]}
		res.header = append(res.header, fmt.Sprintf("vrrp_sync_group %s (%s): vrrplb has no sync groups, each instance moves on its own; what the group did to its instances is done to each below", sg.name, loc(n)))
		var members []string
		for _, c := range n.Children {
			switch c.Keyword() {
			case "group":
				for _, m := range c.Children {
					members = append(members, m.Args...)
				}
			case "sync_group_tracking_weight", "global_tracking":
				sg.keepWeights = true
			case "track_script":
				sg.scriptLines = append(sg.scriptLines, c.Children...)
			case "track_interface":
				sg.ifaceLines = append(sg.ifaceLines, c.Children...)
			case "track_process":
				sg.processLines = append(sg.processLines, c.Children...)
			default:
				res.header = append(res.header, notCarried(loc(c), quoteLine(c)+" of vrrp_sync_group "+sg.name, "vrrplb has no sync groups: give each instance its own notify"))
			}
		}
		for _, m := range members {
			out[m] = sg
		}
	}
	return out
}

// apply does to a member instance what keepalived's sync group did: without
// sync_group_tracking_weight its trackers' weights become 0 (keepalived logs
// "ignoring weight ... SYNC group"), and the group's own trackers are the
// instance's, at weight 0.
func (sg *syncGroup) apply(in *instance, tr kaTrackers, scriptRoot string) error {
	why := fmt.Sprintf("in vrrp_sync_group %s (%s) without sync_group_tracking_weight, keepalived set this tracker's weight to 0, and so does this", sg.name, loc(sg.node))
	if !sg.keepWeights {
		for i := range in.scripts {
			if in.scripts[i].weight != 0 {
				in.scripts[i].weight = 0
				in.scripts[i].notes = append(in.scripts[i].notes, why)
			}
		}
		for i := range in.ifaces {
			if in.ifaces[i].weight != 0 {
				in.ifaces[i].weight = 0
				in.ifaces[i].notes = append(in.ifaces[i].notes, why)
			}
		}
		for i := range in.procChecks {
			if in.procChecks[i].weight != 0 {
				in.procChecks[i].weight = 0
				in.procChecks[i].script.notes = append(in.procChecks[i].script.notes, why)
			}
		}
	}
	// The group's trackers: read as the instance's own, then weight 0.
	nScripts, nIfaces, nProcs := len(in.scripts), len(in.ifaces), len(in.procChecks)
	b := &kaBuild{in: in, scriptLines: sg.scriptLines, processLines: sg.processLines}
	if err := kaTrackScripts(b, tr.scripts, scriptRoot); err != nil {
		return err
	}
	if err := kaTrackProcesses(b, tr.processes); err != nil {
		return err
	}
	if len(sg.ifaceLines) > 0 {
		if err := kaTrackInterfaces(b, &keepalived.Node{Children: sg.ifaceLines}); err != nil {
			return err
		}
	}
	in.scripts = in.scripts[:nScripts+len(dropTracked(in.scripts[:nScripts], in.scripts[nScripts:]))]
	from := fmt.Sprintf("a tracker of vrrp_sync_group %s (%s): keepalived put every instance of the group in FAULT while it failed; weight 0 here", sg.name, loc(sg.node))
	for i := nScripts; i < len(in.scripts); i++ {
		in.scripts[i].weight = 0
		in.scripts[i].notes = append(in.scripts[i].notes, from)
	}
	for i := nIfaces; i < len(in.ifaces); i++ {
		in.ifaces[i].weight = 0
		in.ifaces[i].notes = append(in.ifaces[i].notes, from)
	}
	for i := nProcs; i < len(in.procChecks); i++ {
		in.procChecks[i].weight = 0
		in.procChecks[i].script.notes = append(in.procChecks[i].script.notes, from)
	}
	return nil
}

// dropTracked moves to the front of add the trackers whose script the
// instance does not already track, and returns them.
func dropTracked(have, add []trackScript) []trackScript {
	kept := add[:0]
	for _, a := range add {
		dup := false
		for _, h := range have {
			if h.name == a.name && h.name != "" {
				dup = true
			}
		}
		if !dup {
			kept = append(kept, a)
		}
	}
	return kept
}
