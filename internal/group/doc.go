// Package group runs the members of a set while the set runs: the VRRP
// instances of a vrrp.Set, the frontends and health checkers of a
// proxy.Set. Members start before Run (then Run starts them) or while it
// runs, and stop one by one on a reload; the first that stops on its own
// ends Run, which then stops all the others and waits for them. It is not
// an errgroup: members come and go, and a member asked to stop is not a
// failure. It knows nothing of VRRP or proxies.
package group
