import LodestarCache
import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Who is on the other end of a client connection: the socket peer, or the PROXY protocol's source.
final class ConnectionInfo {
    var client: IPAddress?
    var clientText: String
    let scheme: String

    init(remote: SocketAddress?, scheme: String) {
        self.scheme = scheme
        if let ip = remote?.ipAddress, let a = IPAddress(ip) {
            client = a
            clientText = a.description
        } else {
            client = nil
            clientText = "-"
        }
    }
}

/// Notes when the first byte of a request head arrives, so a slow head (slowloris) can be told from an idle connection.
final class ActivityTracker: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    /// Set while the connection waits for a request head.
    var armed = true
    var firstByteAt: NIODeadline?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if armed && firstByteAt == nil { firstByteAt = .now() }
        context.fireChannelRead(data)
    }
}

/// What a `ProxyHandler` serves: an HTTP/1.1 connection, or one HTTP/2 stream ticked by its connection's ticker.
enum ClientMode {
    case http1(ActivityTracker)
    case http2(StreamTicker)
}

extension HTTPRequestHead {
    /// An HTTP/1.0 request (HTTP/2's heads say 2.0, whose minor version is also 0).
    var isHTTP10: Bool { version.major == 1 && version.minor == 0 }
    /// The version an answer to this request carries.
    var responseVersion: HTTPVersion { version.major == 2 ? .http2 : (version.minor == 0 ? .http1_0 : .http1_1) }
}

/// When things happened in an exchange (monotonic).
struct ExchangeTimes {
    let start: NIODeadline
    /// The request went to an origin / its response head came back.
    var upstreamStart: NIODeadline?
    var upstreamHead: NIODeadline?
    /// Last byte either way, for the body and response timeouts.
    var lastUpstreamActivity: NIODeadline
    var lastClientActivity: NIODeadline
    /// An absolute deadline (gRPC's `grpc-timeout`).
    var deadline: NIODeadline?

    init(now: NIODeadline = .now()) {
        start = now
        lastUpstreamActivity = now
        lastClientActivity = now
    }
}

/// A client connection's (or HTTP/2 stream's) two clocks: since when it has been idle between requests, and since
/// when it has taken none of the answer queued for it (nginx's `send_timeout`), through an exchange and after it — a
/// cache HIT is queued whole, and its client may take it long after the exchange ended.
struct ClientClock {
    var idleSince: NIODeadline
    /// Since when bytes have waited for the client without any of them leaving; nil while none wait.
    var blockedSince: NIODeadline?
    /// The bytes waiting at the last look.
    private var lastBuffered = 0

    init(now: NIODeadline = .now()) {
        idleSince = now
    }

    /// Looks at the client at `now` (at the ticks; the handler also clears `blockedSince` whenever writability comes
    /// back): `buffered`, the bytes still waiting in the channel, where the channel tells (an HTTP/1.1 socket: a cache
    /// HIT queued whole leaves bit by bit while the channel stays unwritable), else its writability (an HTTP/2
    /// stream). True when the client has taken nothing for longer than `limitMs` (`limits.sendTimeoutMs`).
    mutating func stalled(writable: Bool, buffered: Int?, now: NIODeadline, limitMs: Int) -> Bool {
        if let buffered {
            guard buffered > 0 else {
                blockedSince = nil
                lastBuffered = 0
                return false
            }
            if blockedSince == nil || buffered < lastBuffered { blockedSince = now }  // some left: the clock starts again
            lastBuffered = buffered
        } else {
            guard !writable else {
                blockedSince = nil
                return false
            }
            if blockedSince == nil { blockedSince = now }
        }
        return now - (blockedSince ?? now) > .milliseconds(Int64(limitMs))
    }

    /// The bytes still waiting in a client's socket channel (an HTTP/1.1 connection's; never ask an HTTP/2 stream's
    /// channel: swift-nio-http2 stops the process on an option it does not know).
    static func buffered(socket channel: any Channel) -> Int? {
        try? channel.syncOptions?.getOption(.bufferedWritableBytes)
    }
}

/// The request body parts sent upstream, held (up to `limit` bytes, as Envoy's retry buffer) until the response
/// starts, so that a request that met an already-closed pooled connection can be sent again whole.
struct BodyReplay {
    static let limit = 64 * 1024
    private(set) var parts: [HTTPClientRequestPart] = []
    private var bytes = 0
    /// Some body went out and was not kept: the request cannot be replayed.
    private(set) var overflowed = false

    mutating func record(_ part: HTTPClientRequestPart) {
        guard !overflowed else { return }
        if case .body(.byteBuffer(let b)) = part { bytes += b.readableBytes }
        if bytes > Self.limit {
            overflowed = true
            parts = []
        } else {
            parts.append(part)
        }
    }

    /// The response has begun: nothing will be sent again, so nothing more is held.
    mutating func stop() {
        overflowed = true
        parts = []
    }

    /// Hands the held parts back for a new attempt (they are recorded again as they are re-sent).
    mutating func take() -> [HTTPClientRequestPart] {
        defer { parts = []; bytes = 0 }
        return parts
    }
}

/// One request being forwarded: what the client asked, where it goes, and the upstream phase's state machine.
final class Exchange {
    let head: HTTPRequestHead
    let route: CompiledRoute
    let pool: LoopPool
    let requestId: String
    let framing: BodyFraming
    /// Servers, attempts and retries (pure; see `UpstreamExchange`).
    var machine: UpstreamExchange
    var times = ExchangeTimes()
    /// Body parts read before the upstream connection was ready.
    var pending: [HTTPClientRequestPart] = []
    /// Body parts already sent, kept while small so the request can go again on a fresh connection.
    var replay = BodyReplay()
    var requestEnded = false
    var upstream: UpstreamConnection?
    /// Upstream request head written (and possibly body parts).
    var sentUpstream = false
    var responseHead: HTTPResponseHead?
    /// Body bytes relayed: from the client, and to it.
    var bytes = (in: Int64(0), out: Int64(0))
    var keepAliveClient = true
    /// The cache's part in this exchange (routes with `cache.enabled`).
    var cache: CacheExchange?
    /// The upgrade asked for and allowed (WebSocket); the origin's 101 makes the connection a tunnel.
    let upgrade: UpgradeRequest?
    /// A gRPC call: edge-made failures are gRPC statuses in trailers, `grpc-timeout` is its deadline.
    let grpc: Bool
    /// A gRPC "trailers-only" response's status fields, sent as trailers at the end (see `relayResponseHead`).
    var deferredTrailers: HTTPHeaders?
    /// The encoder of an answer the edge compresses (`compressHead`).
    var deflater: Deflater?

    init(head: HTTPRequestHead, route: CompiledRoute, pool: LoopPool, requestId: String, framing: BodyFraming,
         upgrade: UpgradeRequest? = nil) {
        self.head = head
        self.route = route
        self.pool = pool
        self.requestId = requestId
        self.framing = framing
        self.upgrade = upgrade
        self.grpc = GRPC.isGRPC(contentType: head.headers.first(name: "content-type"))
        if grpc, let ns = GRPC.timeoutNanoseconds(head.headers.first(name: "grpc-timeout")) {
            times.deadline = times.start + .nanoseconds(ns)
        }
        self.machine = UpstreamExchange(idempotent: UpstreamExchange.isIdempotent(method: head.method.rawValue),
                                        hasBody: framing != .none, retries: pool.runtime.pool.retries, upgrade: upgrade != nil)
    }

    /// The origin switched protocols: the connections are becoming a tunnel.
    var tunnelling: Bool { machine.state == .tunnel }

    /// The server of the latest attempt.
    var server: Int? { machine.lastServer }
    var start: NIODeadline { times.start }
}

/// A weak reference that a loop-bound timer or callback closure can hold, so that it keeps no handler or ticker alive.
final class Weak<Object: AnyObject> {
    weak var object: Object?
    init(_ object: Object) { self.object = object }
}
