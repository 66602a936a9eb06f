package proxy

// Health is the proxy's view of backend health (satisfied by *health.Checker).
type Health interface {
	// Healthy reports whether backend ("host:port" as configured) may take
	// new connections.
	Healthy(backend string) bool
	// ReportFault is a passive fault: a connect to backend failed. It
	// triggers an immediate check.
	ReportFault(backend string)
	// Subscribe calls fn on every change of a backend's health until cancel
	// is called.
	Subscribe(fn func(backend string, healthy bool)) (cancel func())
}

// alwaysHealthy is the Health of a frontend without checks (health type
// "none", or no Health given): every backend takes connections.
type alwaysHealthy struct{}

func (alwaysHealthy) Healthy(string) bool { return true }
func (alwaysHealthy) ReportFault(string)  {}
func (alwaysHealthy) Subscribe(func(string, bool)) func() {
	return func() {}
}
