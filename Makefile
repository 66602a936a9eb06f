# vrrplb — see README.md. Every target works on a fresh clone with Go installed.

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOBIN       ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# gocyclo: no function over cyclomatic complexity 30 (issue 17). A tool run
# by lint, pinned, never linked into vrrplb.
GOCYCLO := github.com/fzipp/gocyclo/cmd/gocyclo@v0.6.0
# Each fuzz target as package:Target. FUZZTIME is a duration (60s) or a count
# of inputs (200000x). `make test` counts: on Go 1.26 a duration run can fail
# at its deadline with a bare "context deadline exceeded" and no input written,
# a race in Go's fuzz coordinator (go.dev/issue/75804, fixed in Go 1.27).
FUZZTIME    ?= 60s
FUZZCOUNT   := 200000x
FUZZ        := ./config:FuzzParse ./vrrp:FuzzDecode ./config/keepalived:FuzzKeepalived \
               ./config/nginx:FuzzNginx ./config/haproxy:FuzzHaproxy ./config/convert:FuzzConvert

.PHONY: all build deb test test-k8s lint fuzz clean bench bench-quick bench-deps bench-failover soak

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/vrrplb ./cmd/vrrplb

# bin/vrrplb_VERSION_ARCH.deb from the static binary, with dpkg-deb alone
# (deploy/debian/build-deb says what it holds), then lintian where installed.
deb: build
	@deb=$$(DEB_ARCH=$$($(GO) env GOARCH) deploy/debian/build-deb bin/vrrplb '$(VERSION)' bin) && echo "$$deb" && \
	 if command -v lintian >/dev/null; then lintian --fail-on error,warning "$$deb"; \
	 else echo "lintian is not installed: the package is not checked"; fi

# vet, then every test with the race detector. The root-only tests (network
# namespaces, raw sockets) run when this is run as root and skip otherwise;
# VRRPLB_E2E=1 turns such a skip into a failure. -count=1: results depend
# on the kernel and on keepalived, which Go's test cache cannot see. Then
# each fuzz target for FUZZCOUNT inputs (4-11 s each on a 2-core machine).
test:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	 if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZCOUNT)

# The real-Kubernetes suite (root): one etcd and three kube-apiservers behind
# two vrrplb hosts in network namespaces, kubectl and a client-go program as
# clients. e2e/k8s/build.sh builds kube-apiserver, kubectl and etcd at their
# pinned versions into ~/.cache/vrrplb-k8s the first time (about 11 minutes
# on two cores), then finds them there. -v: the tests log their figures.
test-k8s:
	@dir=$$(e2e/k8s/build.sh) && \
	 VRRPLB_K8S=1 VRRPLB_K8S_BIN="$$dir" $(GO) test -count=1 -timeout 30m -v ./e2e/k8s

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	 if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(GOCYCLO) -over 30 .

fuzz:
	@set -e; for t in $(FUZZ); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
	  $(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

# The benchmarks compare vrrplb with these; as root, bench installs the missing ones.
BENCH_PKGS  := haproxy nginx-light libnginx-mod-stream wrk iperf3 keepalived iproute2 tcpdump

# Both benchmark tables: the proxy against haproxy and nginx stream on
# loopback (saturated rows over 10 interleaved rounds with a confidence
# interval, fixed-load rows with the whole host's CPU per request; about
# 20 minutes), then failover against keepalived in the e2e lab (root).
# BENCH_FLAGS adds flags, e.g. BENCH_FLAGS="-before /tmp/vrrplb-old" to
# measure an earlier binary beside in the same rounds.
bench: bench-deps build
	$(GO) run ./e2e/bench -vrrplb bin/vrrplb -no-check $(BENCH_FLAGS)
	$(GO) run ./e2e/failbench

# The proxy table in a short mode (2 rounds of 1 s): checks the tooling,
# its figures are not for comparing.
bench-quick: bench-deps build
	$(GO) run ./e2e/bench -vrrplb bin/vrrplb -no-check -quick $(BENCH_FLAGS)

bench-deps:
	@missing=""; for p in $(BENCH_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make bench needs the Debian packages$$missing: run it as root to install them"; exit 1; fi; \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Failover as a client sees it, vrrplb against keepalived in the e2e lab
# (root, keepalived): a markdown table with the RFC 5798 bound beside.
bench-failover:
	$(GO) run ./e2e/failbench

# Two nodes at VRRPv3 10 ms adverts, the master's proxy saturated for
# SOAK_DURATION (default 5m): advert send jitter, transitions, GC pauses (root, tcpdump).
soak:
	$(GO) run ./e2e/soak

clean:
	rm -rf bin

# The demo, as root: a lab of network namespaces on this machine (two vrrplb
# hosts, three fake apiservers, a client); the VIP fails over, an apiserver
# goes unready, then everything is torn down. Needs iproute2.
.PHONY: demo
demo:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/demo/ ./cmd/vrrplb ./e2e/fakeapiserver ./e2e/demo
	bin/demo/demo

# The same in BGP mode, as root with FRR installed (Debian: frr): two LB hosts
# announce the VIP to an FRR router, which spreads a client's connections
# over both; one host's apiservers go unready, the other gets SIGTERM.
.PHONY: demo-bgp
demo-bgp:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/demo/ ./cmd/vrrplb ./e2e/fakeapiserver ./e2e/demo
	bin/demo/demo -bgp
