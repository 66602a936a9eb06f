package engine

import (
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
}

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
