package engine

import (
	"slices"

	"github.com/vrrplb/vrrplb/vrrp"
)

// The daemon and the engine speak over a socket pair (the engine's fd 3),
// one JSON message a line. The daemon sends requests; the engine answers
// each one but a verdict with one reply carrying the request's ID, in the
// order the requests came. Verdicts are not queued behind requests on
// either side.

// Command is the hidden subcommand that runs the engine process.
const Command = "vrrp-engine"

// request is a message to the engine; exactly one of its parts is set.
type request struct {
	ID uint64 `json:"id,omitempty"`
	// Verdict is a frontend's health verdict; it has no reply.
	Verdict *verdict `json:"verdict,omitempty"`
	// Prepare checks a config and builds what it adds, changing nothing.
	Prepare *configFile `json:"prepare,omitempty"`
	// Commit applies the prepared config; Discard drops it.
	Commit  bool `json:"commit,omitempty"`
	Discard bool `json:"discard,omitempty"`
	// Snapshot asks for the engine's metrics and instances.
	Snapshot bool `json:"snapshot,omitempty"`
	// Maintenance is the whole maintenance set; the reply says whether
	// the engine applied it.
	Maintenance *MaintenanceSet `json:"maintenance,omitempty"`
}

// MaintenanceSet is which instances `vrrplb maintenance` put in
// maintenance: every one (All, those a reload adds too) or those named. The
// daemon keeps it, so it survives a reload and a restart of the engine, and
// sends the whole of it on each change.
type MaintenanceSet struct {
	All   bool     `json:"all,omitempty"`
	Names []string `json:"names,omitempty"`
}

// Has reports whether the instance called name is in maintenance.
func (s MaintenanceSet) Has(name string) bool {
	return s.All || slices.Contains(s.Names, name)
}

// With puts one instance, or with name "" every one, in maintenance (on) or
// takes it out; all is every instance of the config.
func (s MaintenanceSet) With(name string, on bool, all []string) MaintenanceSet {
	switch {
	case name == "":
		return MaintenanceSet{All: on}
	case on && !s.Has(name):
		s.Names = append(slices.Clone(s.Names), name)
		slices.Sort(s.Names)
	case !on && s.All:
		s = MaintenanceSet{Names: slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == name })}
	case !on:
		s.Names = slices.DeleteFunc(slices.Clone(s.Names), func(n string) bool { return n == name })
	}
	return s
}

func (s MaintenanceSet) empty() bool { return !s.All && len(s.Names) == 0 }

// configFile is the config file as the daemon read and validated it
// (config.Config.Source): the engine parses the same bytes, not the file
// again, which may have changed since.
type configFile struct {
	Path string `json:"path"`
	TOML []byte `json:"toml"`
}

// verdict is whether a frontend has a healthy backend.
type verdict struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
}

// reply answers one request: an error (prepare, commit), or a snapshot.
type reply struct {
	ID    uint64 `json:"id"`
	Error string `json:"error,omitempty"`
	// Metrics are the engine's series in the protobuf exposition format.
	Metrics   []byte                `json:"metrics,omitempty"`
	Instances []vrrp.InstanceStatus `json:"instances,omitempty"`

	// lost is set by the daemon's reader, never sent: the engine went
	// away before answering.
	lost error
}
