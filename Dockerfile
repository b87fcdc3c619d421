# syntax=docker/dockerfile:1
#
# Lodestar: one image for `lodestar dns`, `lodestar edge` and `lodestar origin`.
#
#   docker build -t lodestar:latest .
#   docker run --rm lodestar:latest version
#
# Swift packages: on the development machine of this repository the dependencies are fetched from a local mirror
# (SwiftPM mirror configuration outside the repository). A real `docker build` fetches them from GitHub, as named
# in Package.swift / Package.resolved, so the build stage needs network access to github.com.

############################ build ############################
FROM swift:6.0-bookworm AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libmaxminddb-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Package.swift names the test targets too, so their folders are copied for the manifest to load.
COPY Package.swift Package.resolved ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product lodestar --static-swift-stdlib \
 && install -D -m 0755 "$(swift build -c release --show-bin-path)/lodestar" /out/lodestar \
 && cp -R "$(swift build -c release --show-bin-path)/Lodestar_LodestarStatusPage.resources" /out/


########################### runtime ###########################
FROM debian:bookworm-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libmaxminddb0 ca-certificates libstdc++6 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 lodestar \
 && useradd --system --uid 10001 --gid lodestar --home-dir /opt/lodestar --no-create-home --shell /usr/sbin/nologin lodestar \
 && install -d -o root -g root -m 0755 /opt/lodestar /opt/lodestar/deploy \
 && install -d -o lodestar -g lodestar -m 0750 /var/cache/lodestar

COPY --from=build /out/lodestar /usr/local/bin/lodestar
# The status page's assets (CSS, script, world map) are looked up next to the binary.
COPY --from=build /out/Lodestar_LodestarStatusPage.resources /usr/local/bin/Lodestar_LodestarStatusPage.resources
# The layout mirrors the repository: /opt/lodestar/GeoData next to the default topology.json, and deploy
# topologies mounted at /opt/lodestar/deploy/ find the database as ../GeoData/… and their key as secrets/gossip.key.
COPY GeoData/lodestar-sample.mmdb GeoData/lodestar-sample.csv GeoData/README.md /opt/lodestar/GeoData/
COPY topology.json /opt/lodestar/topology.json

# No gossip key is baked in: mount one (Docker/Kubernetes secret) at the topology's gossip.keyFile.
WORKDIR /opt/lodestar
USER lodestar:lodestar

# DNS (53 in deploy/compose.yaml, 5300 in deploy/k8s), edge HTTP 8080, sample origin 8000, gossip 7946/udp.
# The admin endpoints (/healthz, /status) listen on loopback in the deploy topologies and are not exposed.
EXPOSE 53/udp 53/tcp 5300/udp 5300/tcp 8080/tcp 8000/tcp 7946/udp

# `lodestar dns`, `lodestar edge --node ID`, `lodestar origin`, `lodestar check`; --topology defaults to
# topology.json in the working directory, i.e. /opt/lodestar/topology.json (the loopback sample topology).
ENTRYPOINT ["lodestar"]
CMD ["--help"]
