// swift-tools-version:6.0
import PackageDescription

/// Settings shared by every target (see STYLE.md: one array for all).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Lodestar",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lodestar", targets: ["lodestar"]),
        .library(name: "LodestarDNS", targets: ["LodestarDNS"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CMaxMindDB",
            pkgConfig: "libmaxminddb",
            providers: [.apt(["libmaxminddb-dev"])]
        ),
        // zlib for the pass-through lanes' response compression (the full path's is swift-nio-extras').
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "LodestarTopology", swiftSettings: swiftSettings),
        // recvmmsg/sendmmsg for the DNS server's UDP loop (not in Swift's Glibc module).
        .target(name: "CLodestarNet"),
        // The DNS admin listener's status page (issue 8): the snapshot model, the HTML renderer and its bundled assets.
        .target(
            name: "LodestarStatusPage",
            resources: [.copy("Resources")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "LodestarStatusPageTests", dependencies: ["LodestarStatusPage"], swiftSettings: swiftSettings),
        // The process's Prometheus registry (swift-prometheus) and scrape-time collectors, shared by every role.
        .target(
            name: "LodestarMetrics",
            dependencies: [.product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LodestarGeo",
            dependencies: ["CMaxMindDB", "LodestarTopology"],
            swiftSettings: swiftSettings
        ),
        // Edge selection and health: the answer engine compiled from a GeoIP database, the reference selector, the
        // health views and the one health policy (LodestarGeo only reads databases).
        .target(name: "LodestarSelection", dependencies: ["LodestarGeo", "LodestarTopology", "LodestarGossip"],
                swiftSettings: swiftSettings),
        .testTarget(name: "LodestarSelectionTests", dependencies: ["LodestarSelection", "LodestarGeo", "LodestarTopology", "LodestarGossip"],
                    swiftSettings: swiftSettings),
        .target(
            name: "LodestarDNS",
            dependencies: ["LodestarGeo", "LodestarSelection", "LodestarTopology", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "LodestarDNSServer",
            dependencies: [
                "LodestarDNS", "LodestarSelection", "LodestarMetrics", "CLodestarNet",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // RFC 9111 cache policy, pure: directives, HTTP dates, storability, freshness, age, Vary keys, invalidation (issue 4).
        .target(name: "LodestarCache", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: swiftSettings),
        .testTarget(name: "LodestarCacheTests", dependencies: ["LodestarCache", "LodestarTopology", .product(name: "NIOCore", package: "swift-nio")],
                    swiftSettings: swiftSettings),
        // Edge forwarding core, pure: LB policies, origin health, rate limiting, PROXY protocol, framing and deny rules.
        .target(name: "LodestarEdge", dependencies: ["LodestarTopology"], swiftSettings: swiftSettings),
        // Edge HTTP(S) reverse proxy on NIO.
        .target(
            name: "LodestarProxy",
            dependencies: [
                "LodestarEdge", "LodestarTopology", "LodestarCache", "LodestarMetrics", "LodestarDNS", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The admin endpoints: the HTTP/1.1 listener, the token guard and the edge's and DNS node's routers.
        .target(
            name: "LodestarAdmin",
            dependencies: [
                "LodestarProxy", "LodestarCache", "LodestarDNS", "LodestarDNSServer", "LodestarGeo", "LodestarSelection",
                "LodestarGossip", "LodestarGossipServer", "LodestarMetrics", "LodestarStatusPage", "LodestarTopology",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LodestarAdminTests",
            dependencies: ["LodestarAdmin", "LodestarProxy", "LodestarCache", "LodestarTopology",
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // The node runtimes (swift-service-lifecycle Services): DNSNode and EdgeNode, their state, gossip and reloads.
        .target(
            name: "LodestarNode",
            dependencies: [
                "LodestarAdmin", "LodestarTopology", "LodestarGeo", "LodestarSelection", "LodestarDNS", "LodestarDNSServer",
                "LodestarProxy", "LodestarGossip", "LodestarGossipServer", "LodestarMetrics", "LodestarStatusPage",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "lodestar",
            dependencies: [
                "LodestarTopology", "LodestarGeo", "LodestarSelection", "LodestarDNS", "LodestarDNSServer", "LodestarProxy",
                "LodestarGossip", "LodestarGossipServer", "LodestarMetrics", "LodestarLogging", "LodestarStatusPage",
                "LodestarAdmin", "LodestarNode",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // libFuzzer target (see Fuzz/README.md); a normal build gives a corpus replayer.
        .executableTarget(
            name: "lodestar-fuzz",
            dependencies: ["LodestarDNS", "LodestarGeo", "LodestarSelection", "LodestarTopology", "LodestarGossip",
                           "LodestarEdge"],
            path: "Sources/LodestarFuzz",
            swiftSettings: swiftSettings
        ),
        // SWIM membership core: pure state machine, time and randomness passed in (issue 5).
        .target(name: "LodestarGossip", dependencies: [.product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: swiftSettings),
        .testTarget(name: "LodestarGossipTests", dependencies: ["LodestarGossip", "LodestarTopology"], swiftSettings: swiftSettings),
        // swift-log handler writing one logfmt / JSON / text line per event to stderr.
        .target(name: "LodestarLogging", dependencies: [.product(name: "Logging", package: "swift-log")], swiftSettings: swiftSettings),
        .testTarget(name: "LodestarLoggingTests", dependencies: ["LodestarLogging", .product(name: "Logging", package: "swift-log")],
                    swiftSettings: swiftSettings),
        // The gossip member on a UDP socket (NIO): authentication, replay and skew checks before the SWIM core.
        .target(
            name: "LodestarGossipServer",
            dependencies: [
                "LodestarGossip", "LodestarGeo", "LodestarSelection", "LodestarTopology", "LodestarMetrics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LodestarGossipServerTests",
            dependencies: ["LodestarGossipServer", "LodestarGossip", "LodestarGeo", "LodestarSelection", "LodestarTopology",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LodestarProxyTests",
            dependencies: ["LodestarProxy", "LodestarEdge", "LodestarTopology", "CZlib",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOEmbedded", package: "swift-nio"),
                           .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "LodestarEdgeTests", dependencies: ["LodestarEdge", "LodestarTopology"], swiftSettings: swiftSettings),
        .testTarget(name: "LodestarTopologyTests", dependencies: ["LodestarTopology"], swiftSettings: swiftSettings),
        .testTarget(
            name: "LodestarGeoTests",
            dependencies: ["LodestarGeo", "LodestarTopology"],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LodestarDNSTests",
            dependencies: ["LodestarDNS", "LodestarGeo", "LodestarSelection", "LodestarTopology", "LodestarDNSServer",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOEmbedded", package: "swift-nio")],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["lodestar", "LodestarTopology"],
            exclude: ["dnspython_checks.py", "edge_origin.py", "edge_client.py", "deploy_check.py", "page_proxy.py", "h2_attacks.py",
                      "ws_client.py", "ws_origin.py", "grpc", "h2_graceful.py", "h2_websocket.py", "tls_rotation_client.py"],
            swiftSettings: swiftSettings
        ),
    ]
)
