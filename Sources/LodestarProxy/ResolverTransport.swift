import LodestarTopology
import NIOCore
import NIOPosix

/// Why a DNS exchange gave no answer.
struct ResolverTransportError: Error, CustomStringConvertible {
    var description: String
}

/// Sends DNS queries for the origin resolver and hands back the answers' bytes: over UDP from one socket per address
/// family (an answer counts only from the server asked and with the query's id), or over TCP (RFC 7766: two length
/// bytes before each message) when an answer was cut. Lives on one event loop; call it only there.
final class ResolverTransport {
    private let loop: any EventLoop
    private var sockets: [Bool: EventLoopFuture<any Channel>] = [:]
    private var pending: [UInt16: (server: SocketAddress, promise: EventLoopPromise<[UInt8]>)] = [:]
    private var closed = false

    init(loop: any EventLoop) { self.loop = loop }

    /// A query id not in use.
    func freshID() -> UInt16 {
        var id = UInt16.random(in: 0...UInt16.max)
        while pending[id] != nil { id &+= 1 }
        return id
    }

    /// One UDP exchange with `server`, failed after `timeout`.
    func udp(_ query: [UInt8], id: UInt16, server: ListenAddress, timeout: TimeAmount) -> EventLoopFuture<[UInt8]> {
        let promise = loop.makePromise(of: [UInt8].self)
        guard !closed, let address = try? SocketAddress(ipAddress: server.host.description, port: server.port) else {
            promise.fail(ResolverTransportError(description: "resolver closed or bad nameserver \(server)"))
            return promise.futureResult
        }
        pending[id] = (address, promise)
        let timer = loop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            if let p = pending.removeValue(forKey: id) { p.promise.fail(ResolverTransportError(description: "no answer from \(server)")) }
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        socket(v6: !server.host.isIPv4).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                var buffer = channel.allocator.buffer(capacity: query.count)
                buffer.writeBytes(query)
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
            case .failure(let error):
                pending.removeValue(forKey: id)?.promise.fail(error)
            }
        }
        return promise.futureResult
    }

    /// One TCP exchange with `server` on a new connection, failed after `timeout`.
    func tcp(_ query: [UInt8], server: ListenAddress, timeout: TimeAmount) -> EventLoopFuture<[UInt8]> {
        let promise = loop.makePromise(of: [UInt8].self)
        let timer = loop.scheduleTask(in: timeout) { promise.fail(ResolverTransportError(description: "no TCP answer from \(server)")) }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LengthPrefixedReader(promise: promise))
                }
            }
            .connect(host: server.host.description, port: server.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                    var buffer = channel.allocator.buffer(capacity: query.count + 2)
                    buffer.writeInteger(UInt16(truncatingIfNeeded: query.count))
                    buffer.writeBytes(query)
                    channel.writeAndFlush(buffer, promise: nil)
                case .failure(let error):
                    promise.fail(error)
                }
            }
        return promise.futureResult
    }

    /// Closes the sockets; queries in flight fail.
    func close() {
        closed = true
        for (_, p) in pending { p.promise.fail(ResolverTransportError(description: "resolver closed")) }
        pending = [:]
        for (_, s) in sockets { s.whenSuccess { $0.close(promise: nil) } }
        sockets = [:]
    }

    /// The UDP socket for one family, bound to an ephemeral port on first use.
    private func socket(v6: Bool) -> EventLoopFuture<any Channel> {
        if let made = sockets[v6] { return made }
        let bound = NIOLoopBound(self, eventLoop: loop)
        let made = DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPAnswerHandler(owner: bound.value))
                }
            }
            .bind(host: v6 ? "::" : "0.0.0.0", port: 0)
        sockets[v6] = made
        made.assumeIsolated().whenFailure { [self] _ in sockets[v6] = nil }
        // NIO closes a datagram channel on a send error such as ENETUNREACH or EPERM: the next query opens a new one.
        made.assumeIsolated().whenSuccess { [self] channel in
            channel.closeFuture.hop(to: loop).assumeIsolated().whenComplete { [self] _ in
                if let current = sockets[v6], current === made { sockets[v6] = nil }
            }
        }
        return made
    }

    /// An answer arrived: it completes the query with its id when it came from the server asked.
    fileprivate func received(_ bytes: [UInt8], from source: SocketAddress) {
        guard bytes.count >= 2 else { return }
        let id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        guard let p = pending[id], p.server == source else { return }
        pending[id] = nil
        p.promise.succeed(bytes)
    }
}

/// Hands UDP answers to the transport.
private final class UDPAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private weak var owner: ResolverTransport?

    init(owner: ResolverTransport) { self.owner = owner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        owner?.received(Array(envelope.data.readableBytesView), from: envelope.remoteAddress)
    }
}

/// Reads one length-prefixed DNS message from a TCP stream.
private final class LengthPrefixedReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let promise: EventLoopPromise<[UInt8]>
    private var buffer = ByteBuffer()

    init(promise: EventLoopPromise<[UInt8]>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var part = unwrapInboundIn(data)
        buffer.writeBuffer(&part)
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              let message = buffer.getBytes(at: buffer.readerIndex + 2, length: Int(length)) else { return }
        promise.succeed(message)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ResolverTransportError(description: "connection closed before the answer"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
