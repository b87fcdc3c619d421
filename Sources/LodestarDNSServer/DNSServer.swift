import Foundation
import LodestarDNS
import LodestarGeo
import LodestarSelection
import LodestarMetrics
import LodestarTopology
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import Synchronization

/// Holds the current `Authority`; a reload swaps it atomically while queries keep flowing.
/// Readers keep their own reference and only take the lock when `version` says it changed.
public final class AuthorityBox: Sendable {
    private let current: Mutex<Authority>
    /// Bumped by every `replace(with:)`.
    let version = Atomic<Int>(0)

    public init(_ authority: Authority) { current = Mutex(authority) }

    public var authority: Authority { current.withLock { $0 } }

    public func replace(with authority: Authority) {
        current.withLock { $0 = authority }
        version.add(1, ordering: .releasing)
    }
}

/// One event loop's view of the `AuthorityBox`: lock-free on the hot path.
struct AuthorityReader {
    let box: AuthorityBox
    private var seen = -1
    private var cached: Authority?

    init(box: AuthorityBox) { self.box = box }

    /// The current authority (re-read from the box only after a reload).
    mutating func current() -> Authority {
        let v = box.version.load(ordering: .acquiring)
        if v != seen || cached == nil {
            cached = box.authority
            seen = v
        }
        return cached ?? box.authority
    }
}

/// A per-event-loop packet cache (no locks): responses by `AnswerKey`, in the manner of PowerDNS's packet cache.
/// Emptied when the zone is reloaded, when edge health changes, and when it reaches `capacity` entries.
struct PacketCache {
    struct Entry {
        var bytes: [UInt8]
        var rcode: UInt16
        var kind: ResponseKind
        var qname: DNSName
        var truncated: Bool
        var qtype: UInt16
        var hadClientSubnet: Bool
        var decision: AnswerDecision?

        /// What metrics and the query log need.
        var facts: ResponseFacts {
            ResponseFacts(rcode: rcode, qtype: qtype, truncated: truncated, hadClientSubnet: hadClientSubnet, decision: decision)
        }

        init(_ r: DNSResponse) {
            bytes = r.bytes
            rcode = r.rcode
            kind = r.kind
            qname = r.qname
            truncated = r.truncated
            qtype = r.qtype
            hadClientSubnet = r.hadClientSubnet
            decision = r.decision
        }
    }

    let capacity: Int
    private var entries: [AnswerKey: Entry] = [:]
    /// Held strongly so a new authority can never be mistaken for the old one at a reused address.
    private var authority: Authority?
    private var generation: UInt64 = 0
    /// Admission: the cache keeps storing misses only while it earns its place. Over each window of lookups at
    /// least one in `minHitShare` must hit; below that (clients that rarely repeat, such as many ECS subnets) only one
    /// miss in `sampleEvery` is stored, so the work of storing is saved and a load that turns repetitive is noticed.
    private var window = (lookups: 0, hits: 0)
    private(set) var admitting = true
    private var skipped = 0
    static let windowSize = 16_384
    static let minHitShare = 5
    static let sampleEvery = 16

    init(capacity: Int) { self.capacity = capacity }

    /// Forgets everything if the authority or its health generation changed since the last call.
    mutating func sync(with a: Authority) {
        let gen = a.healthGeneration
        if a !== authority || gen != generation {
            entries.removeAll(keepingCapacity: true)
            authority = a
            generation = gen
        }
    }

    mutating func lookup(_ key: AnswerKey) -> Entry? {
        let found = entries[key]
        window.lookups += 1
        if found != nil { window.hits += 1 }
        if window.lookups >= Self.windowSize {
            admitting = window.hits * Self.minHitShare >= window.lookups
            window = (0, 0)
        }
        return found
    }

    mutating func store(_ key: AnswerKey, _ response: DNSResponse) {
        guard capacity > 0, response.reusable else { return }
        if !admitting {
            skipped += 1
            guard skipped % Self.sampleEvery == 0 else { return }
        }
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[key] = Entry(response)
    }
}

/// The rate limiter all UDP threads share (one set of buckets, so SO_REUSEPORT spreading cannot multiply the limit),
/// in 16 shards under locks of their own: the key is hashed outside any lock and picks the shard by its top bits, so
/// threads rarely meet on a lock and never all on one. Time comes from the caller (its batch's clock reading).
final class SharedRateLimiter: Sendable {
    /// One shard's lock and buckets, padded so that two shards' locks never share a cache line.
    final class Shard: Sendable {
        let buckets: Mutex<ResponseRateLimiter>
        private let padding: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)

        init(_ limiter: ResponseRateLimiter) { buckets = Mutex(limiter) }
    }

    static let shardCount = 16
    private let keys: RateLimitKey
    private let shards: [Shard]

    /// `tableSize` buckets in all (65,536 by default, 1 MiB), split evenly over the shards.
    init(settings: RateLimitSettings, tableSize: Int = 1 << 16) {
        let keys = RateLimitKey(settings: settings)
        self.keys = keys
        let perShard = max(16, tableSize / Self.shardCount)
        shards = (0..<Self.shardCount).map { _ in Shard(ResponseRateLimiter(keys: keys, tableSize: perShard)) }
    }

    /// Decides for one response to `client`; `now` in seconds (any monotonic origin shared by the callers).
    /// Whether responses to `client` are limited at all (the fast path skips naming the bucket when not).
    func limits(_ client: IPAddress) -> Bool { keys.limits(client) }

    func decide(client: IPAddress, kind: ResponseKind, qname: DNSName, now: Double) -> ResponseRateLimiter.Decision {
        guard keys.limits(client) else { return .send }
        let key = keys.key(client: client, kind: kind, qname: qname)
        let shard = shards[Int(truncatingIfNeeded: key >> 60) & (Self.shardCount - 1)]
        return shard.buckets.withLock { $0.decide(key: key, now: now) }
    }
}

/// Runs the authoritative server: one UDP socket per listen address and event loop (SO_REUSEPORT, vectored reads),
/// and one TCP listener per address (RFC 7766). `shutdown()` closes everything.
public final class DNSServer: Sendable {
    /// How to run.
    public struct Configuration: Sendable {
        public var listen: [ListenAddress]
        public var threads: Int
        /// Datagrams read per system call (recvmmsg).
        public var vectorReadCount: Int = 32
        public var tcpIdleTimeout: TimeAmount
        public var maxTCPConnections: Int
        public var rateLimit: RateLimitSettings
        /// Packet cache entries per event loop (0 turns the cache off).
        public var packetCacheEntries: Int
        /// Where the server registers its metrics (a private hub when nil).
        public var metrics: MetricsHub?
        /// Log one query in this many (0: no query log).
        public var queryLogSample: Int = 0

        public init(listen: [ListenAddress], threads: Int = System.coreCount, tcpIdleTimeout: TimeAmount = .seconds(10),
                    maxTCPConnections: Int = 256, rateLimit: RateLimitSettings = RateLimitSettings(),
                    packetCacheEntries: Int = 16384) {
            self.packetCacheEntries = max(0, packetCacheEntries)
            self.listen = listen
            self.threads = max(1, threads)
            self.tcpIdleTimeout = tcpIdleTimeout
            self.maxTCPConnections = maxTCPConnections
            self.rateLimit = rateLimit
        }
    }

    public let stats = DNSServerStats()
    /// The Prometheus families and the decision table.
    public let metrics: DNSMetrics
    let box: AuthorityBox
    /// The settings it was made with.
    public let configuration: Configuration
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    let limiter: SharedRateLimiter
    private let channels = Mutex<[any Channel]>([])
    private let udpLoops = Mutex<[UDPSocketLoop]>([])
    /// Open TCP connections: who made room for whom, and who is idle too long.
    let tcpTable: TCPConnectionTable
    private let sweeper = Mutex<RepeatedTask?>(nil)

    public init(authority: AuthorityBox, configuration: Configuration, logger: Logger) {
        box = authority
        self.configuration = configuration
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
        limiter = SharedRateLimiter(settings: configuration.rateLimit)
        metrics = DNSMetrics(hub: configuration.metrics ?? MetricsHub(), stats: stats)
        tcpTable = TCPConnectionTable(capacity: configuration.maxTCPConnections, idleTimeout: configuration.tcpIdleTimeout)
    }

    /// Binds every listener; throws (after closing what was opened) if any address cannot be bound.
    /// Returns the bound addresses (useful with port 0).
    @discardableResult
    public func start() async throws -> [SocketAddress] {
        var bound = [SocketAddress]()
        startTCPSweeper()
        do {
            for address in configuration.listen {
                // UDP: one socket and thread per configured thread on the same port; the kernel spreads datagrams
                // (SO_REUSEPORT). The first socket picks the port when the configuration says 0.
                var port = address.port
                for _ in 0..<configuration.threads {
                    let loop = try UDPSocketLoop(host: address.host.description, port: port)
                    udpLoops.withLock { $0.append(loop) }
                    if port == 0, let p = loop.local.port { port = p }
                    if bound.last?.port != port || bound.last?.protocol != loop.local.protocol { bound.append(loop.local) }
                    loop.start(answerer: makeAnswerer(), batch: configuration.vectorReadCount, logger: logger)
                }
                let tcp = try await tcpBootstrap().bind(host: address.host.description, port: port).get()
                add(tcp)
                logger.info("listening", metadata: ["address": "\(address.host.isIPv4 ? address.host.description : "[\(address.host)]"):\(port)",
                                                    "udp_sockets": "\(configuration.threads)", "tcp": "yes"])
            }
        } catch {
            await shutdown()
            throw error
        }
        return bound
    }

    private func add(_ channel: any Channel) { channels.withLock { $0.append(channel) } }

    private func makeAnswerer() -> UDPAnswerer {
        UDPAnswerer(box: box, stats: stats, limiter: limiter, cacheEntries: configuration.packetCacheEntries, metrics: metrics,
                    logger: logger, queryLogSample: configuration.queryLogSample)
    }

    private func tcpBootstrap() -> ServerBootstrap {
        let box = self.box, stats = self.stats, metrics = self.metrics, logger = self.logger, table = tcpTable
        let sample = configuration.queryLogSample
        return ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelInitializer { server in
                server.eventLoop.makeCompletedFuture {
                    try server.pipeline.syncOperations.addHandler(TCPAcceptAdmission(table: table, stats: stats))
                }
            }
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(ByteToMessageHandler(LengthFieldBasedFrameDecoder(lengthFieldBitLength: .twoBytes)))
                    try sync.addHandler(LengthFieldPrepender(lengthFieldBitLength: .twoBytes))
                    try sync.addHandler(TCPQueryHandler(box: box, stats: stats, metrics: metrics, logger: logger,
                                                          queryLogSample: sample, table: table))
                }
            }
    }

    /// Every 250 ms, closes the TCP connections idle past the table's effective timeout.
    private func startTCPSweeper() {
        let table = tcpTable
        let task = group.next().scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { _ in
            for channel in table.expired() { channel.close(promise: nil) }
        }
        sweeper.withLock { $0 = task }
    }

    /// Closes every listener and stops the event loops.
    public func shutdown() async {
        sweeper.withLock { $0?.cancel(); $0 = nil }
        let all = channels.withLock { list in
            defer { list = [] }
            return list
        }
        for c in all { try? await c.close() }
        let loops = udpLoops.withLock { list in
            defer { list = [] }
            return list
        }
        for loop in loops { await loop.stop() }
        try? await group.shutdownGracefully()
    }
}

extension IPAddress {
    /// Converts a NIO socket address (IPv4-mapped IPv6 becomes IPv4).
    init?(_ socket: SocketAddress) {
        switch socket {
        case .v4(let a):
            self = .v4(UInt32(bigEndian: a.address.sin_addr.s_addr))
        case .v6(let a):
            var raw = a.address.sin6_addr
            let bytes = withUnsafeBytes(of: &raw) { Array($0) }
            guard let ip = IPAddress(bytes: bytes) else { return nil }
            self = ip.unmapped
        default:
            return nil
        }
    }

    /// The IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d) stands for; any other address as it is.
    var unmapped: IPAddress {
        if case .v6(0, let lo) = self, lo >> 32 == 0xFFFF { return .v4(UInt32(truncatingIfNeeded: lo)) }
        return self
    }
}

/// Answers length-prefixed DNS messages on a TCP connection in order (RFC 7766 §6.2.1.1 pipelining); marks the
/// connection active in the `TCPConnectionTable`, whose sweeper closes it when idle.
final class TCPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var reader: AuthorityReader
    let stats: DNSServerStats
    var random = FastRandom()
    var client: IPAddress = .v4(0)
    let metrics: DNSMetrics
    var counters = LocalDNSCounters()
    let logger: Logger
    var sampler: QueryLogSampler

    let table: TCPConnectionTable

    init(box: AuthorityBox, stats: DNSServerStats, metrics: DNSMetrics, logger: Logger, queryLogSample: Int,
         table: TCPConnectionTable) {
        reader = AuthorityReader(box: box)
        self.stats = stats
        self.metrics = metrics
        self.logger = logger
        self.table = table
        sampler = QueryLogSampler(sampleEvery: queryLogSample)
    }

    func channelActive(context: ChannelHandlerContext) {
        if let remote = context.channel.remoteAddress, let ip = IPAddress(remote) { client = ip }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let start = NIODeadline.now()
        let frame = unwrapInboundIn(data)
        stats.tcpQueries.add(1, ordering: .relaxed)
        table.touch(context.channel)
        let packet = Array(frame.readableBytesView)
        guard let response = reader.current().respond(to: packet, from: client, transport: .tcp, random: &random) else {
            // Not a query we can answer at all: the stream can no longer be trusted.
            stats.dropped.add(1, ordering: .relaxed)
            metrics.recordDropped()
            context.close(promise: nil)
            return
        }
        stats.record(rcode: response.rcode, truncated: false)
        let facts = ResponseFacts(rcode: response.rcode, qtype: response.qtype, truncated: false,
                                  hadClientSubnet: response.hadClientSubnet, decision: response.decision)
        metrics.record(facts, transport: .tcp, local: &counters)
        let elapsed = NIODeadline.now() - start
        metrics.recordDuration(.nanoseconds(elapsed.nanoseconds), transport: .tcp)
        if sampler.take() {
            logger.logQuery(client: "\(client)", transport: .tcp, qname: response.qname.description, facts: facts,
                            micros: elapsed.nanoseconds / 1000, cached: false)
        }
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: response.bytes)), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    /// A client that does not read its answers: once 64 KiB of them wait unsent (NIO's high water mark) it is closed
    /// rather than buffered without bound.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !context.channel.isWritable { context.close(promise: nil) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
