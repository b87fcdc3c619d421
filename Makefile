# Lodestar — the two commands of the quick start are `make run` and `make test`.
# Both install what a fresh Debian machine lacks (you are root there).

SWIFT ?= swift
TOPOLOGY ?= topology.json
APT_PACKAGES := libmaxminddb-dev zlib1g-dev mmdb-bin bind9-dnsutils unbound dnsperf pkg-config curl openssl iproute2 iptables python3-yaml docker-compose chromium \
                nghttp2-client docker.io debootstrap
# Python clients the tests drive: dnspython, h2 (raw HTTP/2 attacks), websockets, fnfqueue (Scripts/nfq-delay.py: the
# region simulation's latency without netem); grpcio and protobuf (the gRPC
# echo stubs in Tests/IntegrationTests/grpc were generated for grpcio-tools 1.85.1 / protobuf 7).
PY_MODULES := dns:dnspython h2:h2 websockets:websockets fnfqueue:fnfqueue
# promtool comes out of Debian's prometheus package, unpacked under .build/tools (installing the package would also
# install and start a Prometheus server).
TOOLS := $(CURDIR)/.build/tools/usr/bin
BENCH_PACKAGES := gdnsd dnsperf gcc

.PHONY: run test deps build release geo check regions regions-containers bench bench-edge bench-cache fuzz clean

## run: the default topology on loopback: DNS on :5300, three edges on 127.0.x.1:8080, the sample origin on :8000
run: deps release
	.build/release/lodestar up --topology $(TOPOLOGY)

## test: unit and integration tests (real server, dig and dnspython)
# Every test is XCTest; Swift Testing is turned off so XCTest's summary is the last line printed.
test: deps $(TOOLS)/promtool
	$(SWIFT) build --build-tests
	PATH="$(TOOLS):$$PATH" $(SWIFT) test --skip-build --disable-swift-testing

$(TOOLS)/promtool:
	@command -v promtool >/dev/null 2>&1 && mkdir -p $(TOOLS) && ln -sf "$$(command -v promtool)" $@ || { \
	  mkdir -p .build/tools/deb && cd .build/tools/deb && apt-get download prometheus >/dev/null 2>&1 && \
	  dpkg-deb -x prometheus_*.deb $(CURDIR)/.build/tools && test -x $@; }

## deps: install missing Debian packages and dnspython
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  policy=""; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy=1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; status=$$?; \
	  [ -z "$$policy" ] || rm -f /usr/sbin/policy-rc.d; \
	  case " $$missing " in *" unbound "*) [ ! -d /run/systemd/system ] || systemctl disable --now -q unbound 2>/dev/null || true;; esac; \
	  [ $$status -eq 0 ]; \
	fi
	@for m in $(PY_MODULES); do python3 -c "import $${m%%:*}" 2>/dev/null || python3 -m pip install -q "$${m#*:}"; done
	@python3 -c "import dns._features as f, sys; sys.exit(0 if f.have('dnssec') else 1)" 2>/dev/null || \
	  python3 -m pip install -q "dnspython[dnssec]"
	@cd Tests/IntegrationTests/grpc && python3 -c "import echo_pb2_grpc" 2>/dev/null || \
	  python3 -m pip install -q "grpcio>=1.85.1" "protobuf>=7.35.1,<8"

build: deps
	$(SWIFT) build

## release: the optimized binary. Runtime exclusivity checks are off in every module (SwiftNIO's included: they cost
## the edge about 10 % of its CPU per request); debug builds and `make test` keep them.
RELEASE_FLAGS := -Xswiftc -enforce-exclusivity=unchecked
release: deps
	$(SWIFT) build -c release $(RELEASE_FLAGS) --product lodestar

## geo: rebuild GeoData/lodestar-sample.mmdb from its CSV (reproducible: fixed build epoch)
geo: build
	.build/debug/lodestar geo compile GeoData/lodestar-sample.csv GeoData/lodestar-sample.mmdb --build-epoch 1764028800

check: build
	.build/debug/lodestar check $(TOPOLOGY)

## regions: the three regions on network namespaces with inter-region latency, through the failover scenario (root)
regions: build
	Scripts/regions

## regions-containers: the same in Docker containers (starts dockerd if needed; docs/regions-in-containers.md)
regions-containers: build
	Scripts/regions --containers

## bench: lodestar dns vs gdnsd with dnsperf and the ECS load generator
bench:
	bash Benchmarks/dns.sh

## bench-edge: lodestar edge vs nginx with wrk (1 KiB and 64 KiB bodies)
bench-edge:
	bash Benchmarks/edge.sh

## bench-cache: cache hits of lodestar edge vs nginx proxy_cache and Varnish with wrk (1 KiB and 64 KiB objects)
bench-cache:
	bash Benchmarks/cache.sh

## fuzz: 10 minutes of libFuzzer on the DNS decoder and answer path
fuzz: deps
	bash Fuzz/run.sh 600

clean:
	rm -rf .build .build-*
