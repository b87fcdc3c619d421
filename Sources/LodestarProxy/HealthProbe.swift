import LodestarTopology
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One active health check: a fresh connection, `GET path`, success on a 2xx/3xx status within the timeout. It speaks
/// what the pool speaks: TLS (verified, as requests are) when the pool has `tls`, and HTTP/2 on `h2`/`h2c` pools.
enum HealthProbe {
    /// Probes `pool.servers[index]`. The Host sent is the check's `host`, else the TLS name, else the name the server
    /// was given by (with its port), else its address.
    static func run(server index: Int, check: HealthCheckSettings, pool: PoolRuntime, on loop: any EventLoop) -> EventLoopFuture<Bool> {
        let promise = OnceBox(loop.makePromise(of: Bool.self))
        guard pool.servers.indices.contains(index) else {
            promise.finish(false)
            return promise.promise.futureResult
        }
        let server = pool.servers[index].address
        let timeout = TimeAmount.milliseconds(Int64(check.timeoutMs))
        let named = pool.servers[index].hostName.map { "\($0):\(server.port)" }
        let host = check.host ?? pool.pool.tls?.serverName ?? named ?? server.description
        let http2 = pool.pool.protocol != .http1
        let tls = pool.tlsContext
        let serverName = pool.tlsServerName(index)
        let timer = loop.scheduleTask(in: timeout) { promise.finish(false) }
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    if let tls { try ops.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                    if !http2 { try ops.addHandler(StatusLineReader(promise: promise)) }
                }
            }
            .connect(host: server.host.description, port: server.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    promise.promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                    if http2 {
                        probeHTTP2(channel, path: check.path, host: host, secure: tls != nil, promise: promise)
                    } else {
                        let request = "GET \(check.path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: lodestar-health-check\r\nConnection: close\r\n\r\n"
                        channel.writeAndFlush(channel.allocator.buffer(string: request), promise: nil)
                    }
                case .failure:
                    promise.finish(false)
                }
            }
        promise.promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.promise.futureResult
    }

    /// `GET path` on one stream of a new HTTP/2 connection.
    private static func probeHTTP2(_ channel: any Channel, path: String, host: String, secure: Bool, promise: OnceBox) {
        do {
            let session = try H2Session(channel: channel, secure: secure)
            session.probe(path: path, host: host, promise: promise)
        } catch {
            promise.finish(false)
        }
    }
}

/// Judges the response head of an HTTP/2 probe stream.
final class ProbeStatusHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let promise: OnceBox

    init(promise: OnceBox) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), head.status.code >= 200 {
            promise.finish(head.status.code < 400)
        }
    }

    func channelInactive(context: ChannelHandlerContext) { promise.finish(false) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { promise.finish(false) }
}

/// Reads until the status line is complete and judges it.
private final class StatusLineReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let promise: OnceBox
    private var seen = [UInt8]()

    init(promise: OnceBox) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if let bytes = buffer.readBytes(length: min(buffer.readableBytes, 64 - seen.count)) { seen += bytes }
        guard let eol = seen.firstIndex(of: 10) ?? (seen.count >= 64 ? seen.count : nil) else { return }
        // "HTTP/1.1 200 OK": the status is the three digits after the first space.
        let line = seen[..<eol]
        var ok = false
        if line.starts(with: Array("HTTP/1.".utf8)), let space = line.firstIndex(of: 32), space + 3 < line.endIndex {
            let digits = line[(space + 1)...(space + 3)]
            if digits.allSatisfy({ $0 >= 48 && $0 <= 57 }), let first = digits.first {
                ok = first == UInt8(ascii: "2") || first == UInt8(ascii: "3")
            }
        }
        promise.finish(ok)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.finish(false)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.finish(false)
        context.close(promise: nil)
    }
}

/// A promise completed at most once (the first of timeout, connect failure, answer or close wins).
/// Touched only on the probe's event loop.
final class OnceBox: @unchecked Sendable {
    let promise: EventLoopPromise<Bool>
    private var done = false
    init(_ promise: EventLoopPromise<Bool>) { self.promise = promise }

    func finish(_ value: Bool) {
        guard !done else { return }
        done = true
        promise.succeed(value)
    }
}
