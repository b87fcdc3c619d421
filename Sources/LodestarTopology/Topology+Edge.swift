/// One HTTP(S) listener of an edge node.
public struct EdgeListener: Sendable, Equatable {
    /// Address and port to bind.
    public var address: ListenAddress
    /// TLS termination on this listener (nil: plain HTTP).
    public var tls: TLSSettings?
    /// The listener expects a PROXY protocol v1 or v2 header before the first byte of HTTP or TLS.
    public var proxyProtocol: Bool
    /// What clients may speak: TLS listeners offer these by ALPN (default `h2` and `http/1.1`); a plain listener
    /// with `h2c` also takes HTTP/2 with prior knowledge, told apart from HTTP/1.1 by the connection preface.
    public var protocols: [ListenerProtocol]

    public init(address: ListenAddress, tls: TLSSettings? = nil, proxyProtocol: Bool = false, protocols: [ListenerProtocol]? = nil) {
        self.address = address
        self.tls = tls
        self.proxyProtocol = proxyProtocol
        self.protocols = protocols ?? (tls == nil ? [.http1] : [.h2, .http1])
    }
}

/// An application protocol a listener speaks (`listen[].protocols`).
public enum ListenerProtocol: String, Sendable, Equatable, CaseIterable {
    /// HTTP/1.1 (and 1.0).
    case http1 = "http/1.1"
    /// HTTP/2 over TLS, chosen by ALPN.
    case h2
    /// HTTP/2 over cleartext with prior knowledge (RFC 9113 §3.3).
    case h2c
}

/// HTTP/2 limits of every HTTP/2 client connection of an edge (`proxy.http2`). The attack defences (rapid reset,
/// CONTINUATION, SETTINGS and PING floods) end the connection with GOAWAY ENHANCE_YOUR_CALM.
public struct HTTP2Limits: Sendable, Equatable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS announced; streams beyond it are refused.
    public var maxConcurrentStreams: Int
    /// SETTINGS_MAX_HEADER_LIST_SIZE: the largest decoded header list (HPACK bombs stop here).
    public var maxHeaderListBytes: Int
    /// SETTINGS_INITIAL_WINDOW_SIZE: each stream's receive window.
    public var initialWindowBytes: Int
    /// The connection's receive window.
    public var connectionWindowBytes: Int
    /// SETTINGS_MAX_FRAME_SIZE.
    public var maxFrameBytes: Int
    /// A connection without open streams this long is closed with GOAWAY.
    public var idleTimeoutMs: Int
    /// After GOAWAY (drain, SIGTERM, idle), streams still open this long are cut.
    public var gracefulShutdownMs: Int
    /// RST_STREAM frames a client may send per `floodWindowMs` (CVE-2023-44487 rapid reset).
    public var maxResetsPerWindow: Int
    /// PING, SETTINGS and PRIORITY frames a client may send per `floodWindowMs`.
    public var maxControlFramesPerWindow: Int
    /// The window of both flood limits.
    public var floodWindowMs: Int
    /// CONTINUATION frames allowed after one HEADERS frame.
    public var maxContinuationFrames: Int

    public init(maxConcurrentStreams: Int = 128, maxHeaderListBytes: Int = 32_768, initialWindowBytes: Int = 1 << 20,
                connectionWindowBytes: Int = 4 << 20, maxFrameBytes: Int = 16_384, idleTimeoutMs: Int = 60_000,
                gracefulShutdownMs: Int = 10_000, maxResetsPerWindow: Int = 200, maxControlFramesPerWindow: Int = 200,
                floodWindowMs: Int = 10_000, maxContinuationFrames: Int = 5) {
        self.maxConcurrentStreams = maxConcurrentStreams
        self.maxHeaderListBytes = maxHeaderListBytes
        self.initialWindowBytes = initialWindowBytes
        self.connectionWindowBytes = connectionWindowBytes
        self.maxFrameBytes = maxFrameBytes
        self.idleTimeoutMs = idleTimeoutMs
        self.gracefulShutdownMs = gracefulShutdownMs
        self.maxResetsPerWindow = maxResetsPerWindow
        self.maxControlFramesPerWindow = maxControlFramesPerWindow
        self.floodWindowMs = floodWindowMs
        self.maxContinuationFrames = maxContinuationFrames
    }
}

/// Tunnels after an HTTP/1.1 `Upgrade` or an HTTP/2 extended CONNECT (WebSocket), edge-wide (`proxy.tunnels`).
public struct TunnelLimits: Sendable, Equatable {
    /// Open tunnels per edge; an upgrade beyond it gets 503.
    public var maxOpen: Int
    /// A tunnel with no byte in either direction this long is closed.
    public var idleTimeoutMs: Int

    public init(maxOpen: Int = 10_000, idleTimeoutMs: Int = 300_000) {
        self.maxOpen = maxOpen
        self.idleTimeoutMs = idleTimeoutMs
    }
}

/// Lowest TLS version a listener accepts.
public enum TLSMinimumVersion: String, Sendable, Equatable, CaseIterable {
    case tls12 = "1.2"
    case tls13 = "1.3"
}

/// TLS termination settings of one listener.
public struct TLSSettings: Sendable, Equatable {
    /// Certificates; the first is the default when SNI names none of the others.
    public var certificates: [TLSCertificate]
    public var minimumVersion: TLSMinimumVersion

    public init(certificates: [TLSCertificate], minimumVersion: TLSMinimumVersion = .tls12) {
        self.certificates = certificates
        self.minimumVersion = minimumVersion
    }
}

/// A certificate chain and its key (PEM files), served to clients whose SNI matches `serverNames`.
public struct TLSCertificate: Sendable, Equatable {
    /// PEM certificate chain (leaf first); relative paths are resolved against the topology's folder.
    public var certificatePath: String
    /// PEM private key.
    public var keyPath: String
    /// Host names (lower case; `*.example.test` matches one label) this certificate is chosen for.
    public var serverNames: [String]

    public init(certificatePath: String, keyPath: String, serverNames: [String]) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.serverNames = serverNames
    }
}

/// How a pool spreads requests over its servers.
public enum BalancePolicy: String, Sendable, Equatable, CaseIterable {
    /// Smooth weighted round robin (nginx's algorithm).
    case roundRobin = "round-robin"
    /// Fewest requests in flight, relative to weight.
    case leastConnections = "least-connections"
    /// Consistent hash ring over the request URI (cache locality); weights scale the ring share.
    case consistentHash = "consistent-hash"
}


/// Active health checking of a pool's servers (HTTP GET).
public struct HealthCheckSettings: Sendable, Equatable {
    /// Path requested, e.g. `/healthz`.
    public var path: String
    /// Host header sent (default: the server's address).
    public var host: String?
    public var intervalMs: Int
    public var timeoutMs: Int
    /// Consecutive successes that make a down server healthy.
    public var rise: Int
    /// Consecutive failures that make a healthy server down.
    public var fall: Int

    public init(path: String = "/", host: String? = nil, intervalMs: Int = 2000, timeoutMs: Int = 1000, rise: Int = 2, fall: Int = 3) {
        self.path = path
        self.host = host
        self.intervalMs = intervalMs
        self.timeoutMs = timeoutMs
        self.rise = rise
        self.fall = fall
    }
}

/// Passive ejection: servers that keep failing real requests are taken out for a while.
public struct PassiveHealthSettings: Sendable, Equatable {
    /// Consecutive 5xx answers or connect failures that eject a server (0 turns passive ejection off).
    public var failures: Int
    /// First ejection period; each further ejection in a row doubles it (up to 10×).
    public var ejectMs: Int
    /// At most this share of the pool is ejected at once (50: half).
    public var maxEjectedPercent: Int

    public init(failures: Int = 5, ejectMs: Int = 10_000, maxEjectedPercent: Int = 50) {
        self.failures = failures
        self.ejectMs = ejectMs
        self.maxEjectedPercent = maxEjectedPercent
    }
}

/// How the edge speaks to a pool's servers (`origins.NAME.protocol`).
public enum OriginProtocol: String, Sendable, Equatable, CaseIterable {
    /// HTTP/1.1 with keep-alive connections, one request at a time each.
    case http1
    /// HTTP/2 over TLS (ALPN `h2`): one connection per server and loop, many streams (gRPC needs h2 or h2c).
    case h2
    /// HTTP/2 over cleartext with prior knowledge.
    case h2c
}

/// TLS towards a pool's servers (`origins.NAME.tls`): the certificate is always verified, against `caFile` or the
/// system's store, for `serverName`.
public struct OriginTLS: Sendable, Equatable {
    /// PEM file of the CAs to trust (absolute after loading); nil: the system's trust store.
    public var caFile: String?
    /// The name sent by SNI and verified in the certificate.
    public var serverName: String?
    /// A client certificate chain and key (PEM) for mutual TLS.
    public var clientCertificate: String?
    public var clientKey: String?

    public init(caFile: String? = nil, serverName: String? = nil, clientCertificate: String? = nil, clientKey: String? = nil) {
        self.caFile = caFile
        self.serverName = serverName
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
    }
}

/// A named pool of origin servers.
public struct OriginPool: Sendable, Equatable {
    public var name: String
    /// HTTP/1.1 (default), h2 (TLS) or h2c.
    public var `protocol`: OriginProtocol
    /// TLS to the servers (required by `h2`; optional for `http1`).
    public var tls: OriginTLS?
    public var servers: [OriginServer]
    public var balance: BalancePolicy
    public var connectTimeoutMs: Int
    /// Longest wait for the response head, and between two reads of the response body.
    public var responseTimeoutMs: Int
    /// Idle keep-alive upstream connections are closed after this long.
    public var idleTimeoutMs: Int
    /// Idle keep-alive connections kept per server and event loop.
    public var maxIdlePerServer: Int
    /// Further attempts on another server after a connect failure (idempotent requests without a body sent yet).
    public var retries: Int
    public var healthCheck: HealthCheckSettings?
    public var passive: PassiveHealthSettings
    /// How servers given by name are looked up again: every `resolveIntervalMs` (nil: when the answer's TTL ends).
    public var resolveIntervalMs: Int?
    /// Which addresses of a named server are used.
    public var resolveFamily: AddressFamilyPreference

    public init(name: String, servers: [OriginServer], balance: BalancePolicy = .roundRobin, connectTimeoutMs: Int = 2000,
                responseTimeoutMs: Int = 30_000, idleTimeoutMs: Int = 60_000, maxIdlePerServer: Int = 64, retries: Int = 2,
                healthCheck: HealthCheckSettings? = nil, passive: PassiveHealthSettings = PassiveHealthSettings(),
                protocol: OriginProtocol = .http1, tls: OriginTLS? = nil, resolveIntervalMs: Int? = nil,
                resolveFamily: AddressFamilyPreference = .ipv4Preferred) {
        self.resolveIntervalMs = resolveIntervalMs
        self.resolveFamily = resolveFamily
        self.name = name
        self.protocol = `protocol`
        self.tls = tls
        self.servers = servers
        self.balance = balance
        self.connectTimeoutMs = connectTimeoutMs
        self.responseTimeoutMs = responseTimeoutMs
        self.idleTimeoutMs = idleTimeoutMs
        self.maxIdlePerServer = maxIdlePerServer
        self.retries = retries
        self.healthCheck = healthCheck
        self.passive = passive
    }
}

/// Header changes applied to a request before it goes upstream, or to a response before it goes to the client.
public struct HeaderRules: Sendable, Equatable {
    /// Headers set (replacing any of the same name), in order.
    public var set: [HeaderField]
    /// Header names removed (case-insensitive).
    public var remove: [String]

    public init(set: [HeaderField] = [], remove: [String] = []) {
        self.set = set
        self.remove = remove
    }

    public var isEmpty: Bool { self.set.isEmpty && self.remove.isEmpty }
}

/// A header name and value.
public struct HeaderField: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A request refused with 403 when every condition it names holds.
public struct DenyRule: Sendable, Equatable {
    /// Methods (upper case); empty means any.
    public var methods: [String]
    /// Glob over the path (`*` any run, `?` one character); nil means any.
    public var path: String?
    /// Header name that must be present (case-insensitive); nil means no header condition.
    public var header: String?
    /// Glob the header's value must match (case-insensitive); nil means presence is enough.
    public var value: String?

    public init(methods: [String] = [], path: String? = nil, header: String? = nil, value: String? = nil) {
        self.methods = methods
        self.path = path
        self.header = header
        self.value = value
    }
}

/// Where requests for some hosts and a path prefix go.
public struct Route: Sendable, Equatable {
    /// Host names (lower case): exact, `*.suffix` (one or more labels) or `*` (any).
    public var hosts: [String]
    /// Longest matching prefix wins among routes whose hosts match.
    public var pathPrefix: String
    /// Origin pool name (validated to exist).
    public var pool: String
    public var requestHeaders: HeaderRules
    public var responseHeaders: HeaderRules
    public var deny: [DenyRule]
    /// Pass the origin's `Server` header through (default: removed).
    public var exposeOriginServer: Bool
    /// The shared cache on this route (off unless the route says so).
    public var cache: RouteCacheSettings
    /// Protocols a client may switch to through this route (`Upgrade`, lower case); default `["websocket"]`.
    public var upgrade: [String]

    public init(hosts: [String], pathPrefix: String = "/", pool: String, requestHeaders: HeaderRules = HeaderRules(),
                responseHeaders: HeaderRules = HeaderRules(), deny: [DenyRule] = [], exposeOriginServer: Bool = false,
                cache: RouteCacheSettings = RouteCacheSettings(), upgrade: [String] = ["websocket"]) {
        self.upgrade = upgrade
        self.hosts = hosts
        self.pathPrefix = pathPrefix
        self.pool = pool
        self.requestHeaders = requestHeaders
        self.responseHeaders = responseHeaders
        self.deny = deny
        self.exposeOriginServer = exposeOriginServer
        self.cache = cache
    }
}

/// How one route uses the edge's shared cache (`routes[].cache`).
public struct RouteCacheSettings: Sendable, Equatable {
    /// Whether GET/HEAD responses of this route are cached per RFC 9111.
    public var enabled: Bool
    /// Grace: how long past its freshness a stored response may still be served when every origin of the pool
    /// is down or failing (on top of any `stale-if-error`); 0 turns it off. `must-revalidate` and friends win.
    public var graceSeconds: Int

    public init(enabled: Bool = false, graceSeconds: Int = 0) {
        self.enabled = enabled
        self.graceSeconds = graceSeconds
    }
}

/// The edge's shared HTTP cache store (`proxy.cache`): a memory tier and an optional disk tier.
public struct CacheSettings: Sendable, Equatable {
    /// Byte bound of the memory tier (bodies, headers and per-entry overhead).
    public var memoryBytes: Int
    /// Largest object stored; larger responses are passed through, never stored.
    public var maxObjectBytes: Int
    /// How long concurrent misses for one object wait for the first one's origin response before going themselves.
    public var lockTimeoutMs: Int
    /// Directory of the disk tier (absolute, resolved against the topology file's folder); nil: memory only.
    /// Each edge uses its own subdirectory named after its id.
    public var diskPath: String?
    /// Byte bound of the disk tier.
    public var diskBytes: Int

    public init(memoryBytes: Int = 256 << 20, maxObjectBytes: Int = 16 << 20, lockTimeoutMs: Int = 5000,
                diskPath: String? = nil, diskBytes: Int = 1 << 30) {
        self.memoryBytes = memoryBytes
        self.maxObjectBytes = maxObjectBytes
        self.lockTimeoutMs = lockTimeoutMs
        self.diskPath = diskPath
        self.diskBytes = diskBytes
    }
}

/// Protocol limits and client timeouts of an edge.
public struct ProxyLimits: Sendable, Equatable {
    /// Longest request line (method, target, version); longer gets 414.
    public var maxRequestLineBytes: Int
    /// Largest header section (names and values); larger gets 431.
    public var maxHeaderBytes: Int
    /// Most header fields; more gets 431.
    public var maxHeaderCount: Int
    /// Largest request body; larger gets 413.
    public var maxBodyBytes: Int64
    /// Time a client has to send a complete request head (slowloris guard): 408 and close.
    public var headerTimeoutMs: Int
    /// Idle time allowed between requests on a keep-alive connection.
    public var keepAliveTimeoutMs: Int
    /// Longest pause while a client sends a body.
    public var bodyTimeoutMs: Int
    /// Longest a client may take none of an answer's bytes (its connection, or its HTTP/2 stream, not writable
    /// all along); then the exchange ends and the connection (the stream) is closed. nginx's `send_timeout`.
    public var sendTimeoutMs: Int
    /// Concurrent client connections per edge; more are closed at once.
    public var maxConnections: Int

    public init(maxRequestLineBytes: Int = 8192, maxHeaderBytes: Int = 32_768, maxHeaderCount: Int = 100,
                maxBodyBytes: Int64 = 1 << 30, headerTimeoutMs: Int = 10_000, keepAliveTimeoutMs: Int = 60_000,
                bodyTimeoutMs: Int = 60_000, sendTimeoutMs: Int = 60_000, maxConnections: Int = 10_000) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.headerTimeoutMs = headerTimeoutMs
        self.keepAliveTimeoutMs = keepAliveTimeoutMs
        self.bodyTimeoutMs = bodyTimeoutMs
        self.sendTimeoutMs = sendTimeoutMs
        self.maxConnections = maxConnections
    }
}

/// Per-client-IP request rate limiting (token bucket).
public struct RequestRateLimitSettings: Sendable, Equatable {
    public var enabled: Bool
    /// Sustained requests per second per client address.
    public var requestsPerSecond: Int
    /// Bucket size: requests allowed in a burst.
    public var burst: Int

    public init(enabled: Bool = false, requestsPerSecond: Int = 100, burst: Int = 200) {
        self.enabled = enabled
        self.requestsPerSecond = requestsPerSecond
        self.burst = burst
    }
}

/// gzip of responses for clients that accept it.
public struct CompressionSettings: Sendable, Equatable {
    public var enabled: Bool
    /// zlib's compression level, 1 (fastest) to 9 (smallest); 6 is zlib's default.
    public var level: Int
    /// Responses with a known length below this are sent as they are.
    public var minBytes: Int
    /// Compressible media types (`text/*` matches any text subtype).
    public var types: [String]

    public static let defaultTypes = ["text/*", "application/json", "application/javascript", "application/xml",
                                      "application/xhtml+xml", "image/svg+xml", "application/wasm"]

    public init(enabled: Bool = true, level: Int = 6, minBytes: Int = 1024, types: [String] = CompressionSettings.defaultTypes) {
        self.enabled = enabled
        self.level = level
        self.minBytes = minBytes
        self.types = types
    }
}

/// Settings shared by every edge's HTTP forwarding core.
public struct ProxySettings: Sendable, Equatable {
    /// Event loops (0: one per core).
    public var threads: Int
    public var limits: ProxyLimits
    public var rateLimit: RequestRateLimitSettings
    public var compression: CompressionSettings
    /// Request id header passed through when the client sent a valid one, else generated.
    public var requestIdHeader: String
    /// One structured log line per request.
    public var accessLog: Bool
    /// The shared cache store used by routes with `cache.enabled`.
    public var cache: CacheSettings
    /// HTTP/2 limits of client connections.
    public var http2: HTTP2Limits
    /// WebSocket and other upgraded connections.
    public var tunnels: TunnelLimits
    /// How origin servers given by name are resolved.
    public var resolver: ResolverSettings
    /// HTTP/1.1 requests without a body to routes that do not cache go through as bytes (the pass-through lane), with
    /// the same rules; off: every request takes the full HTTP/1 codec path.
    public var passThrough: Bool

    public init(threads: Int = 0, limits: ProxyLimits = ProxyLimits(), rateLimit: RequestRateLimitSettings = RequestRateLimitSettings(),
                compression: CompressionSettings = CompressionSettings(), requestIdHeader: String = "X-Request-ID",
                accessLog: Bool = true, cache: CacheSettings = CacheSettings(), http2: HTTP2Limits = HTTP2Limits(),
                tunnels: TunnelLimits = TunnelLimits(), resolver: ResolverSettings = ResolverSettings(),
                passThrough: Bool = true) {
        self.passThrough = passThrough
        self.resolver = resolver
        self.http2 = http2
        self.tunnels = tunnels
        self.threads = threads
        self.limits = limits
        self.rateLimit = rateLimit
        self.compression = compression
        self.requestIdHeader = requestIdHeader
        self.accessLog = accessLog
        self.cache = cache
    }
}
