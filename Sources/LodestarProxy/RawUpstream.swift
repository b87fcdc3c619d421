import NIOCore
import NIOHTTP1

/// Receives what a pass-through upstream connection reads while it serves one exchange (on the connection's loop).
protocol RawUpstreamOwner: AnyObject {
    func rawRead(_ bytes: ByteBuffer)
    func rawReadComplete()
    func rawClosed(_ connection: RawConnection, error: (any Error)?)
}

/// The last handler of a pass-through upstream channel (HTTP/1.1 as bytes, no codec): hands what it reads to the
/// owner and lets the owner hold reads (backpressure from a slow client). Inbound only: NIO's read requests, one
/// after every read, pass it by (reads are held by turning the channel's `autoRead` off instead).
final class RawUpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Its connection: a strong reference (the connection holds this handler too), cleared when the channel goes
    /// inactive or the handler leaves it. Not weak: a weak reference made every read load it through a side table,
    /// and every retain and release of the objects so referenced take the slow path.
    var connection: RawConnection?
    /// Reads are held while the client cannot take more.
    var holdReads = false {
        didSet {
            guard holdReads != oldValue, let context else { return }
            try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: !holdReads)
        }
    }
    private(set) var context: ChannelHandlerContext?
    private var failure: (any Error)?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        connection = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let owner = connection?.owner {
            owner.rawRead(unwrapInboundIn(data))
        } else {
            // Bytes on an idle pooled connection: the origin is misbehaving; drop the connection.
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.owner?.rawReadComplete()
    }

    /// Writes and flushes `bytes` from this handler's place (the last one: straight to the socket), not from the
    /// pipeline's tail through `any Channel`, whose generic write casts the value at run time.
    func send(_ bytes: ByteBuffer) {
        context?.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failure = failure ?? error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection?.closed(error: failure)
        connection = nil
    }
}

/// A keep-alive HTTP/1.1 connection to an origin server that the pass-through lane writes and reads as bytes.
final class RawConnection {
    let channel: any Channel
    let handler: RawUpstreamHandler
    let server: Int
    /// Strong: the handler keeps its connection until the channel is inactive, and a connection closing after its
    /// pool was replaced (a reload, a changed origin address) still tells that pool. The pool holds only its idle
    /// connections, and lets go of them as they are taken, expire or close (all of them when it retires).
    let pool: LoopPool
    /// The exchange using the connection, nil while idle in the pool. Strong (not weak, for the reason given at
    /// `RawUpstreamHandler.connection`): set by the exchange that takes the connection, cleared when it gives it back
    /// (`LoopPool.releaseRaw`), aborts it, or the connection closes (`closed`).
    var owner: (any RawUpstreamOwner)?
    /// Until when the idle connection may be taken again.
    var idleUntil = NIODeadline.distantPast
    /// Requests sent on this connection (a failure on a reused connection may be retried).
    var uses = 0
    private(set) var isClosed = false

    init(channel: any Channel, handler: RawUpstreamHandler, server: Int, pool: LoopPool) {
        self.channel = channel
        self.handler = handler
        self.server = server
        self.pool = pool
    }

    func closed(error: (any Error)?) {
        guard !isClosed else { return }
        isClosed = true
        if let owner {
            self.owner = nil
            owner.rawClosed(self, error: error)
        } else {
            pool.forgetRaw(self)
        }
    }
}

/// Writes a message head as HTTP/1.1 bytes: the rewriter's sink in the pass-through lane.
struct WireHead: HeaderSink {
    var buffer: ByteBuffer

    init(allocator: ByteBufferAllocator, capacity: Int) {
        buffer = allocator.buffer(capacity: capacity)
    }

    /// Into the loop's spare head buffer (`LoopState.headBuffer`): no allocation when its last head has been written.
    init(loop: LoopState, capacity: Int) {
        buffer = loop.headBuffer(capacity: capacity)
    }

    mutating func add(name: String, value: String) {
        StringField(name: name, value: value).write(into: &buffer)
    }

    mutating func copy<F: HeaderFieldRef>(_ field: F) { field.write(into: &buffer) }

    /// `METHOD SP target SP HTTP/1.1 CRLF`.
    mutating func requestLine(method: String, target: String) {
        buffer.writeString(method)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(target)
        buffer.writeStaticString(" HTTP/1.1\r\n")
    }

    /// `HTTP/1.1 SP status SP reason CRLF` (the reason phrase SwiftNIO writes for the code).
    mutating func statusLine(_ status: Int) {
        // The common ones whole (the number and the reason phrase were made into strings each time).
        if let line = Self.commonStatusLine(status) {
            buffer.writeStaticString(line)
            return
        }
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(HTTPResponseStatus(statusCode: status).reasonPhrase)
        buffer.writeInteger(0x0D0A as UInt16)
    }

    static func commonStatusLine(_ status: Int) -> StaticString? {
        switch status {
        case 200: return "HTTP/1.1 200 OK\r\n"
        case 204: return "HTTP/1.1 204 No Content\r\n"
        case 206: return "HTTP/1.1 206 Partial Content\r\n"
        case 301: return "HTTP/1.1 301 Moved Permanently\r\n"
        case 302: return "HTTP/1.1 302 Found\r\n"
        case 304: return "HTTP/1.1 304 Not Modified\r\n"
        case 404: return "HTTP/1.1 404 Not Found\r\n"
        default: return nil
        }
    }

    /// The blank line that ends the head.
    mutating func end() { buffer.writeInteger(0x0D0A as UInt16) }
}
