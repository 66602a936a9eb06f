#!/usr/bin/env bash
# Builds the real kube-apiserver, kubectl and etcd the Kubernetes suite runs,
# from the Go module proxy at the versions pinned in kube/go.mod and
# etcd/go.mod, into a cache outside the repository:
#
#   ${VRRPLB_K8S_CACHE:-$HOME/.cache/vrrplb-k8s}/k8s-<version>-etcd-<version>/
#
# A later run finds the binaries there, checks their versions and builds
# nothing. Prints the directory, and nothing else, on stdout. A cold build
# takes about 11 minutes of two cores (kube-apiserver is most of it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
go=${GO:-go}

k8s_version=$(cd "$here/kube" && $go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd_version=$(cd "$here/etcd" && $go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
dir="${VRRPLB_K8S_CACHE:-$HOME/.cache/vrrplb-k8s}/k8s-$k8s_version-etcd-$etcd_version"
mkdir -p "$dir"

# kube-apiserver and kubectl report the version the Kubernetes release build
# stamps into them; without it they call themselves v0.0.0-master.
minor=${k8s_version#v1.}
minor=${minor%%.*}
stamp="-X k8s.io/component-base/version.gitVersion=$k8s_version"
stamp+=" -X k8s.io/component-base/version.gitMajor=1"
stamp+=" -X k8s.io/component-base/version.gitMinor=$minor"
stamp+=" -X k8s.io/component-base/version.gitTreeState=clean"
stamp+=" -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
stamp+=" -X k8s.io/client-go/pkg/version.gitMajor=1"
stamp+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor"

# build NAME MODULE_DIR PACKAGE builds into $dir/NAME.tmp and renames it, so
# an interrupted build leaves no binary a later run would trust.
build() {
	local name=$1 mod=$2 pkg=$3 flags=$4
	if [ -x "$dir/$name" ]; then
		return
	fi
	echo "building $name ($pkg) into $dir" >&2
	(cd "$here/$mod" && CGO_ENABLED=0 nice $go build -trimpath -ldflags "-s -w $flags" -o "$dir/$name.tmp" "$pkg")
	mv "$dir/$name.tmp" "$dir/$name"
}

build etcd etcd go.etcd.io/etcd/server/v3 ""
build kubectl kube k8s.io/kubernetes/cmd/kubectl "$stamp"
build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$stamp"

# Each binary must say the version it was pinned to.
check() {
	local name=$1 want=$2
	shift 2
	local got
	got=$("$dir/$name" "$@" 2>&1 | head -n 5)
	if ! grep -qF -- "$want" <<<"$got"; then
		echo "$dir/$name reports \"$got\", want $want; remove it to rebuild" >&2
		exit 1
	fi
}
check etcd "etcd Version: ${etcd_version#v}" --version
check kube-apiserver "Kubernetes $k8s_version" --version
check kubectl "Client Version: $k8s_version" version --client

echo "$dir"
