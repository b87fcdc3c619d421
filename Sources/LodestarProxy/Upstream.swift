import LodestarEdge
import LodestarTopology
import NIOCore
import NIOHTTP1
import NIOPosix

/// Receives what an upstream connection reads while it serves one exchange (always called on the connection's loop).
protocol UpstreamOwner: AnyObject {
    func upstreamRead(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(_ writable: Bool)
    func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?)
}

/// The last handler of an upstream channel: hands response parts to its owner and lets the owner hold reads
/// (backpressure from a slow client).
final class UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var connection: UpstreamConnection?
    private var readPending = false
    /// Reads are held while the client cannot take more.
    var holdReads = false {
        didSet {
            if !holdReads && readPending, let context {
                readPending = false
                context.read()
            }
        }
    }
    private(set) var context: ChannelHandlerContext?
    private var failure: (any Error)?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if let owner = connection?.owner {
            owner.upstreamRead(part)
        } else {
            // Bytes on an idle pooled connection: the origin is misbehaving; drop the connection.
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.owner?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.owner?.upstreamWritabilityChanged(context.channel.isWritable)
    }

    func read(context: ChannelHandlerContext) {
        if holdReads { readPending = true } else { context.read() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failure = failure ?? error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection { connection.closed(error: failure) }
    }
}

/// One keep-alive connection to an origin server, owned by one event loop.
final class UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamHandler
    let server: Int
    unowned let pool: LoopPool
    /// The exchange using the connection, nil while idle in the pool.
    weak var owner: (any UpstreamOwner)?
    /// When the connection went back to the pool (for the idle sweep).
    var idleSince = NIODeadline.distantPast
    /// Requests sent on this connection (a failure on a reused connection may be retried).
    var uses = 0
    private(set) var isClosed = false

    init(channel: any Channel, handler: UpstreamHandler, server: Int, pool: LoopPool) {
        self.channel = channel
        self.handler = handler
        self.server = server
        self.pool = pool
    }

    func closed(error: (any Error)?) {
        guard !isClosed else { return }
        isClosed = true
        if let owner {
            owner.upstreamClosed(self, error: error)
        } else {
            pool.forget(self)
        }
    }
}

/// Connection reuse and balancing state of one pool on one event loop (never touched from another thread).
final class LoopPool {
    let runtime: PoolRuntime
    let eventLoop: any EventLoop
    private var idle: [[UpstreamConnection]]
    private var roundRobin: SmoothWeightedRoundRobin
    private var leastStart = 0
    private let bootstrap: ClientBootstrap

    init(runtime: PoolRuntime, eventLoop: any EventLoop) {
        self.runtime = runtime
        self.eventLoop = eventLoop
        self.idle = Array(repeating: [], count: runtime.pool.servers.count)
        self.roundRobin = SmoothWeightedRoundRobin(weights: runtime.weights)
        self.bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(runtime.pool.connectTimeoutMs)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: 256 * 1024)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Interim (1xx) responses are forwarded, so the edge can relay 103 Early Hints and friends; bytes
                    // after a 101 are kept for the tunnel.
                    try channel.pipeline.syncOperations.addHandler(HTTPRequestEncoder())
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(
                        HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward)))
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
                }
            }
    }

    /// Chooses a server for a request, skipping unavailable ones and those in `exclude`; nil when none is left.
    func pick(uri: String, now: UInt64, exclude: [Int]) -> Int? {
        let health = runtime.health
        let ok: (Int) -> Bool = { i in !exclude.contains(i) && health.isAvailable(i, now: now) }
        switch runtime.pool.balance {
        case .roundRobin:
            return roundRobin.next(isAvailable: ok)
        case .leastConnections:
            leastStart &+= 1
            let n = runtime.weights.count
            return LeastConnections.pick(weights: runtime.weights, inFlight: { health.inFlight($0) }, isAvailable: ok,
                                         start: n == 0 ? 0 : leastStart % n)
        case .consistentHash:
            return runtime.ring?.lookup(KeyHash.hash(uri), isAvailable: ok)
        }
    }

    /// An idle keep-alive connection to `server` (most recently used first), if any.
    func takeIdle(server: Int) -> UpstreamConnection? {
        while let c = idle[server].popLast() {
            if c.channel.isActive && !c.isClosed { return c }
        }
        return nil
    }

    /// A new connection to `server`.
    func connect(server: Int) -> EventLoopFuture<UpstreamConnection>.Isolated {
        let address = runtime.pool.servers[server].address
        return bootstrap.connect(host: address.host.description, port: address.port).assumeIsolated()
            .flatMapThrowing { [self] channel in
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                let c = UpstreamConnection(channel: channel, handler: handler, server: server, pool: self)
                handler.connection = c
                return c
            }
    }

    /// Returns a connection after a complete exchange; it is kept for reuse or closed.
    func release(_ c: UpstreamConnection) {
        c.owner = nil
        c.handler.holdReads = false
        guard !c.isClosed, c.channel.isActive, runtime.pool.maxIdlePerServer > 0, !retired else {
            c.channel.close(promise: nil)
            return
        }
        if idle[c.server].count >= runtime.pool.maxIdlePerServer, let oldest = idle[c.server].first {
            idle[c.server].removeFirst()
            oldest.channel.close(promise: nil)
        }
        c.idleSince = .now()
        idle[c.server].append(c)
    }

    /// Closes connections idle longer than the pool's idle timeout (run periodically on this loop). The oldest are at
    /// the front of each list, so the sweep stops at the first young one.
    func sweepIdle(now: NIODeadline) {
        let limit = TimeAmount.milliseconds(Int64(runtime.pool.idleTimeoutMs))
        for s in idle.indices {
            let expired = idle[s].prefix { now - $0.idleSince > limit }
            guard !expired.isEmpty else { continue }
            idle[s].removeFirst(expired.count)
            // Closed after leaving the list: a close calls back into `forget`.
            for c in expired { c.channel.close(promise: nil) }
        }
    }

    /// Drops a closed idle connection.
    func forget(_ c: UpstreamConnection) {
        idle[c.server].removeAll { $0 === c }
    }

    /// Set when a reload replaced this pool: connections are no longer kept.
    private(set) var retired = false

    func retire() {
        retired = true
        closeIdle()
    }

    /// Closes every idle connection (shutdown).
    func closeIdle() {
        for list in idle { for c in list { c.channel.close(promise: nil) } }
        idle = Array(repeating: [], count: idle.count)
    }
}

/// Per-event-loop state of an edge: the configuration its new requests use and one `LoopPool` per origin pool.
final class LoopState {
    let config: EdgeConfig
    let pools: [LoopPool]
    /// The edge's shared cache (nil when no route caches).
    let cache: EdgeCache?
    init(config: EdgeConfig, eventLoop: any EventLoop, cache: EdgeCache?) {
        self.config = config
        self.cache = cache
        pools = config.pools.map { LoopPool(runtime: $0, eventLoop: eventLoop) }
    }

    /// After a reload: idle connections close now, busy ones when their exchange ends.
    func retire() {
        for p in pools { p.retire() }
    }

    /// Sweeps idle upstream connections once a second.
    func startSweeping(on loop: any EventLoop) -> RepeatedTask {
        let bound = NIOLoopBound(self, eventLoop: loop)
        return loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let now = NIODeadline.now()
            for p in bound.value.pools { p.sweepIdle(now: now) }
        }
    }
}
