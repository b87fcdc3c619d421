import LodestarEdge
import LodestarTopology
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

/// A connection a pool keeps while idle (HTTP/1.1 with its codec, or the pass-through lane's bytes).
protocol IdleKept: AnyObject {
    var channel: any Channel { get }
    var isClosed: Bool { get }
    var idleUntil: NIODeadline { get set }
}

extension UpstreamConnection: IdleKept {}
extension RawConnection: IdleKept {}

/// Connection reuse and balancing state of one pool on one event loop (never touched from another thread).
final class LoopPool {
    let runtime: PoolRuntime
    let eventLoop: any EventLoop
    /// This pool's metric series on this loop.
    let series = PoolSeries()
    private var idle: [[UpstreamConnection]]
    /// Idle connections of the pass-through lane (bytes, no codec), per server.
    private var rawIdle: [[RawConnection]]
    private var roundRobin: SmoothWeightedRoundRobin
    private var leastStart = 0
    /// HTTP/2 sessions per server (several when one is full or going away) and the connect in progress.
    private var sessions: [[H2Session]]
    /// Exchanges waiting for a session being connected, per server.
    private var waiting: [[EventLoopPromise<UpstreamConnection>]]

    init(runtime: PoolRuntime, eventLoop: any EventLoop) {
        self.runtime = runtime
        self.eventLoop = eventLoop
        self.idle = Array(repeating: [], count: runtime.servers.count)
        self.rawIdle = Array(repeating: [], count: runtime.servers.count)
        self.sessions = Array(repeating: [], count: runtime.servers.count)
        self.waiting = Array(repeating: [], count: runtime.servers.count)
        self.roundRobin = SmoothWeightedRoundRobin(weights: runtime.weights)
    }

    /// The pool's bootstraps (HTTP/1.1 codec, bytes or bare) per TLS name, made on first use and kept.
    private var bootstraps: [BootstrapKey: ClientBootstrap] = [:]

    /// What a connection's pipeline ends with: the HTTP/1.1 client codec and `UpstreamHandler`, the pass-through
    /// lane's `RawUpstreamHandler`, or nothing (an HTTP/2 session adds its own).
    private enum Ending: Hashable { case http1, raw, bare }

    private struct BootstrapKey: Hashable {
        var ending: Ending
        var serverName: String?
    }

    /// A TCP (+ TLS) bootstrap for `server`. Made on first use, so a pool on an embedded event loop (adapter tests)
    /// needs no sockets, and kept for the pool's later connections (one per TLS name: servers found by different
    /// names are verified against their own).
    private func bootstrap(_ ending: Ending, server: Int) -> ClientBootstrap {
        let key = BootstrapKey(ending: ending, serverName: runtime.tlsContext == nil ? nil : runtime.tlsServerName(server))
        if let made = bootstraps[key] { return made }
        let made = makeBootstrap(ending, serverName: key.serverName)
        bootstraps[key] = made
        return made
    }

    private func makeBootstrap(_ ending: Ending, serverName: String?) -> ClientBootstrap {
        let tls = runtime.tlsContext
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(runtime.pool.connectTimeoutMs)))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: 256 * 1024)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    if let tls {
                        try ops.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                        try ops.addHandler(OriginHandshake(eventLoop: channel.eventLoop))
                    }
                    switch ending {
                    case .bare: return
                    case .raw: return try ops.addHandler(RawUpstreamHandler())
                    case .http1: break
                    }
                    // Interim (1xx) responses are forwarded, so the edge can relay 103 Early Hints and friends; bytes
                    // after a 101 are kept for the tunnel.
                    try ops.addHandler(HTTPRequestEncoder())
                    try ops.addHandler(ByteToMessageHandler(
                        HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward)))
                    try ops.addHandler(UpstreamHandler())
                }
            }
    }

    /// Chooses a server for a request, skipping unavailable ones and those in `exclude`; nil when none is left.
    func pick(uri: String, now: UInt64, exclude: ServerSet) -> Int? {
        let health = runtime.health
        // A local function, not a closure stored in a variable: passed down, it needs no context on the heap.
        func ok(_ i: Int) -> Bool { !exclude.contains(i) && health.isAvailable(i, now: now) }
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
        let (live, stale) = Self.takeLive(&idle[server], now: .now())
        Self.close(stale)
        return live
    }

    // The helpers below only take connections out of a list; the caller closes them once the list is no longer being
    // changed (a close calls back into `forget`/`forgetRaw`, which changes the list: an overlapping access).

    /// The most recently used connection of `list` still open and within its idle limit, and the others met on the
    /// way (to be closed).
    private static func takeLive<C: IdleKept>(_ list: inout [C], now: NIODeadline) -> (C?, [C]) {
        var stale: [C] = []
        while let c = list.popLast() {
            if c.channel.isActive && !c.isClosed && c.idleUntil > now { return (c, stale) }
            stale.append(c)
        }
        return (nil, stale)
    }

    /// Keeps `c` at the end of `list` for `limit` ms; when the list is full its oldest connection leaves it (returned,
    /// to be closed).
    private func keep<C: IdleKept>(_ c: C, in list: inout [C], limit: Int64) -> C? {
        var evicted: C?
        if list.count >= runtime.pool.maxIdlePerServer, !list.isEmpty { evicted = list.removeFirst() }
        c.idleUntil = .now() + .milliseconds(limit)
        list.append(c)
        return evicted
    }

    /// The connections of `lists` idle past their limit, taken out (to be closed).
    private static func expired<C: IdleKept>(_ lists: inout [[C]], now: NIODeadline) -> [C] {
        var out: [C] = []
        for s in lists.indices where lists[s].contains(where: { $0.idleUntil <= now }) {
            out += lists[s].filter { $0.idleUntil <= now }
            lists[s].removeAll { $0.idleUntil <= now }
        }
        return out
    }

    private static func close<C: IdleKept>(_ connections: [C]) {
        for c in connections { c.channel.close(promise: nil) }
    }

    /// A new connection to `server` (HTTP/1.1), or a new stream on an HTTP/2 session to it.
    func connect(server: Int) -> EventLoopFuture<UpstreamConnection>.Isolated {
        if runtime.pool.protocol != .http1 { return stream(server: server) }
        let address = runtime.servers[server].address
        return bootstrap(.http1, server: server).connect(host: address.host.description, port: address.port).assumeIsolated()
            .flatMap { channel in Self.handshaken(channel, requireH2: false) }
            .flatMapThrowing { [self] channel in
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                let c = UpstreamConnection(channel: channel, handler: handler, server: server, pool: self)
                handler.connection = c
                return c
            }
    }

    // MARK: The pass-through lane's connections

    /// An idle pass-through connection to `server` (most recently used first), if any.
    func takeRawIdle(server: Int, now: NIODeadline = .now()) -> RawConnection? {
        let (live, stale) = Self.takeLive(&rawIdle[server], now: now)
        Self.close(stale)
        return live
    }

    /// A new pass-through connection to `server` (HTTP/1.1 pools only).
    func connectRaw(server: Int) -> EventLoopFuture<RawConnection>.Isolated {
        let address = runtime.servers[server].address
        return bootstrap(.raw, server: server).connect(host: address.host.description, port: address.port).assumeIsolated()
            .flatMap { channel in Self.handshaken(channel, requireH2: false) }
            .flatMapThrowing { [self] channel in
                let handler = try channel.pipeline.syncOperations.handler(type: RawUpstreamHandler.self)
                // Closed already: its handler would never hear of it, and would keep the connection it is given.
                guard channel.isActive else { throw ChannelError.ioOnClosedChannel }
                let c = RawConnection(channel: channel, handler: handler, server: server, pool: self)
                handler.connection = c
                return c
            }
    }

    /// Returns a pass-through connection after its exchange: kept when `reusable` (the request went whole, the
    /// response ended cleanly and the origin keeps the connection), closed otherwise. `keepAliveTimeout` as in
    /// `release`.
    func releaseRaw(_ c: RawConnection, reusable: Bool, keepAliveTimeout: Int?) {
        c.owner = nil
        c.handler.holdReads = false
        guard reusable, let limit = idleLimit(keepAliveTimeout), !c.isClosed, c.channel.isActive else {
            c.channel.close(promise: nil)
            return
        }
        let evicted = keep(c, in: &rawIdle[c.server], limit: limit)
        evicted?.channel.close(promise: nil)
    }

    /// Drops a closed idle pass-through connection.
    func forgetRaw(_ c: RawConnection) {
        rawIdle[c.server].removeAll { $0 === c }
    }

    /// How long a returned connection may stay idle (ms), or nil when it is not kept at all.
    private func idleLimit(_ keepAliveTimeout: Int?) -> Int64? {
        let poolLimit = Int64(runtime.pool.idleTimeoutMs)
        let limit = keepAliveTimeout.map { min(poolLimit, Int64($0) * 800) } ?? poolLimit
        guard runtime.pool.maxIdlePerServer > 0, !retired, limit > 0 else { return nil }
        return limit
    }

    /// A stream on a session to `server` with room for it, connecting one when there is none (exchanges that ask
    /// meanwhile wait for the same connect).
    private func stream(server: Int) -> EventLoopFuture<UpstreamConnection>.Isolated {
        sessions[server].removeAll { !$0.isUsable && $0.openStreams == 0 }
        if let s = sessions[server].first(where: { $0.hasRoom }) {
            return s.openStream(pool: self, server: server)
        }
        let promise = eventLoop.makePromise(of: UpstreamConnection.self)
        waiting[server].append(promise)
        if waiting[server].count == 1 { connectSession(server: server) }
        return promise.futureResult.assumeIsolated()
    }

    /// Connects an HTTP/2 session (TLS with ALPN `h2`, or h2c with prior knowledge) and opens the waiting streams.
    private func connectSession(server: Int) {
        let address = runtime.servers[server].address
        let secure = runtime.tlsContext != nil
        bootstrap(.bare, server: server).connect(host: address.host.description, port: address.port).assumeIsolated()
            .flatMap { channel in Self.handshaken(channel, requireH2: secure) }
            .whenComplete { [self] result in
                let waiters = waiting[server]
                waiting[server] = []
                let session: H2Session
                do {
                    session = try H2Session(channel: result.get(), secure: secure)
                } catch {
                    if case .success(let channel) = result { channel.close(promise: nil) }
                    for w in waiters { w.fail(error) }
                    return
                }
                sessions[server].append(session)
                for w in waiters {
                    session.openStream(pool: self, server: server).whenComplete { w.assumeIsolated().completeWith($0) }
                }
            }
    }

    /// The channel once its TLS handshake (if any) succeeded; with `requireH2`, ALPN must have chosen h2. A failure
    /// closes the channel.
    static func handshaken(_ channel: any Channel, requireH2: Bool) -> EventLoopFuture<any Channel> {
        guard let waiter = try? channel.pipeline.syncOperations.handler(type: OriginHandshake.self) else {
            return channel.eventLoop.makeSucceededFuture(channel)
        }
        return waiter.done.futureResult.flatMapThrowing { proto in
            if requireH2 && proto != "h2" { throw OriginALPNError(negotiated: proto) }
            return channel
        }.flatMapErrorThrowing { error in
            channel.close(promise: nil)
            throw error
        }
    }

    /// Returns a connection after a complete exchange; it is kept for reuse or closed. An HTTP/2 stream just ends
    /// (its session stays). `keepAliveTimeout`: the origin's own idle limit in seconds (its `Keep-Alive: timeout=`);
    /// the connection is not offered again after 80% of it, so a request does not cross the origin's close.
    func release(_ c: UpstreamConnection, keepAliveTimeout: Int? = nil) {
        c.owner = nil
        if c.session != nil {
            c.channel.close(promise: nil)
            return
        }
        c.handler.holdReads = false
        guard let limit = idleLimit(keepAliveTimeout), !c.isClosed, c.channel.isActive else {
            c.channel.close(promise: nil)
            return
        }
        let evicted = keep(c, in: &idle[c.server], limit: limit)
        evicted?.channel.close(promise: nil)
    }

    /// Gives a connection back after its response: kept when the request went whole and the origin keeps the
    /// connection (HTTP/1.1 keep-alive), closed otherwise.
    func finish(_ c: UpstreamConnection, response: HTTPResponseHead?, requestEnded: Bool) {
        guard requestEnded, let response, Self.allowsReuse(response) else {
            c.owner = nil
            c.channel.close(promise: nil)
            return
        }
        release(c, keepAliveTimeout: response.headers.first(name: "keep-alive").flatMap(HTTPText.keepAliveTimeout))
    }

    static func allowsReuse(_ head: HTTPResponseHead) -> Bool {
        head.isKeepAlive && head.version.major == 1 && head.version.minor == 1
    }

    /// Closes connections idle past their limit (run periodically on this loop).
    func sweepIdle(now: NIODeadline) {
        let limit = TimeAmount.milliseconds(Int64(runtime.pool.idleTimeoutMs))
        for s in sessions.indices {
            for session in sessions[s] where session.openStreams == 0 && now - session.idleSince > limit { session.close() }
            sessions[s].removeAll { !$0.isUsable && $0.openStreams == 0 }
        }
        let expiredConnections = Self.expired(&idle, now: now)
        Self.close(expiredConnections)
        let expiredRaw = Self.expired(&rawIdle, now: now)
        Self.close(expiredRaw)
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
        for list in sessions { for s in list { s.closeWhenIdle() } }
        for list in idle { for c in list { c.channel.close(promise: nil) } }
        idle = Array(repeating: [], count: idle.count)
        let raw = rawIdle
        rawIdle = Array(repeating: [], count: rawIdle.count)
        for list in raw { for c in list { c.channel.close(promise: nil) } }
    }
}

/// Per-event-loop state of an edge: the configuration its new requests use and one `LoopPool` per origin pool.
final class LoopState {
    let config: EdgeConfig
    let pools: [LoopPool]
    /// The edge's shared cache (nil when no route caches).
    let cache: EdgeCache?
    /// The last head the lanes wrote (a request head for an origin, a response head for a client). Once NIO has
    /// written it, its storage is this loop's alone again and the next head is written into it: the lanes' two heads
    /// per request cost no allocation (four, each buffer being a storage object and its bytes). Until then the next
    /// head gets a buffer of its own (copy on write); a large one is not kept.
    private var spareHead = ByteBuffer()
    static let spareHeadLimit = 8192

    func headBuffer(capacity: Int) -> ByteBuffer {
        var buffer = spareHead
        spareHead = ByteBuffer()
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    /// `buffer` was handed to the channel: kept, to be written into again once the channel is done with it.
    func keep(head buffer: ByteBuffer) {
        if buffer.capacity <= Self.spareHeadLimit { spareHead = buffer }
    }

    /// `previous`: the loop's state being replaced; its pools whose runtime carries over (a pool the change did not
    /// touch) are kept with their connections.
    init(config: EdgeConfig, eventLoop: any EventLoop, cache: EdgeCache?, previous: LoopState? = nil) {
        self.config = config
        self.cache = cache
        pools = config.pools.map { runtime in
            previous?.pools.first { $0.runtime === runtime } ?? LoopPool(runtime: runtime, eventLoop: eventLoop)
        }
    }

    /// After a change: pools not carried into `next` retire (idle connections close now, busy ones when their
    /// exchange ends).
    func retire(keeping next: LoopState? = nil) {
        for p in pools where !(next?.pools.contains { $0 === p } ?? false) { p.retire() }
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
