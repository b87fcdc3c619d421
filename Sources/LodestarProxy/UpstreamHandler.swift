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

/// What one exchange talks to: a keep-alive HTTP/1.1 connection to an origin server, or one stream of an HTTP/2
/// session (`session` set). Either way it takes `HTTPClientRequestPart`s and yields `HTTPClientResponsePart`s.
final class UpstreamConnection {
    /// The TCP channel (HTTP/1.1) or the stream's child channel (HTTP/2).
    let channel: any Channel
    /// The HTTP/2 session the stream belongs to (nil for HTTP/1.1).
    let session: H2Session?
    let handler: UpstreamHandler
    let server: Int
    unowned let pool: LoopPool
    /// The exchange using the connection, nil while idle in the pool.
    weak var owner: (any UpstreamOwner)?
    /// Until when the idle connection may be taken again (the pool's idle timeout, or less when the origin said so).
    var idleUntil = NIODeadline.distantPast
    /// Requests sent on this connection (a failure on a reused connection may be retried).
    var uses = 0
    private(set) var isClosed = false

    init(channel: any Channel, handler: UpstreamHandler, server: Int, pool: LoopPool, session: H2Session? = nil) {
        self.channel = channel
        self.session = session
        self.handler = handler
        self.server = server
        self.pool = pool
    }

    func closed(error: (any Error)?) {
        guard !isClosed else { return }
        isClosed = true
        session?.streamClosed()
        if let owner {
            owner.upstreamClosed(self, error: error)
        } else if session == nil {
            pool.forget(self)
        }
    }
}
