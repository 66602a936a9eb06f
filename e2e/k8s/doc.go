// Package k8s is vrrplb's real-Kubernetes suite: one etcd and three
// kube-apiservers, built from the Go module proxy at pinned versions
// (build.sh), behind two vrrplb LB hosts in the e2e lab's network
// namespaces, with kubectl and a client-go program (kube/kclient) as the
// clients. It runs with `make test-k8s` as root and skips otherwise; it is
// not meant for use outside this repository.
//
// kube/ and etcd/ are modules of their own, so vrrplb's go.mod carries no
// Kubernetes dependency.
package k8s
