// h2floor MODE PORT - the least a SwiftNIO server spends per request, to compare with what the edge spends.
//
// Every mode answers each GET at once with the same 1 KiB (no origin, no parsing beyond finding the request):
//   h1     raw bytes on NIO's channel, a canned HTTP/1.1 answer per "\r\n\r\n" (no HTTP codec);
//   child  h2c with swift-nio-http2's inline multiplexer: a child channel per stream, as the edge's HTTP/2 runs;
//   conn   h2c with no multiplexer: one connection-level handler answers every stream's HEADERS frame.
// And two relays (Relay.swift; `h2floor relay|epoll PORT ORIGIN_PORT`): bytes relayed to an origin and back,
// on SwiftNIO and on a hand-written epoll loop.
// Used by Benchmarks/h2floor.sh; not part of the product.
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

let body = ByteBuffer(repeating: UInt8(ascii: "x"), count: 1024)

func responseHeaders() -> HPACKHeaders {
    [":status": "200", "content-type": "application/octet-stream", "content-length": "1024", "via": "1.1 e1"]
}

/// One stream's child channel: HEADERS and DATA at once.
final class ChildAnswer: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .headers(let h) = unwrapInboundIn(data), h.endStream else { return }
        context.write(wrapOutboundOut(.headers(.init(headers: responseHeaders()))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(body), endStream: true))), promise: nil)
    }
}

/// The connection's frames: every stream answered on the connection pipeline, one flush per read.
final class ConnectionAnswer: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame
    private var pending = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard case .headers(let h) = frame.payload, h.endStream else { return }
        let id = frame.streamID
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .headers(.init(headers: responseHeaders())))), promise: nil)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(body), endStream: true)))),
                      promise: nil)
        pending = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if pending {
            pending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }
}

/// HTTP/1.1 as bytes: a canned answer for every end of a request head in the read (requests have no body).
final class BytesAnswer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var pending = false
    private let reply: ByteBuffer = {
        var b = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\nVia: 1.1 e1\r\n\r\n")
        b.writeImmutableBuffer(body)
        return b
    }()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let heads = unwrapInboundIn(data).withUnsafeReadableBytes { p -> Int in
            var n = 0, i = 3
            while i < p.count {
                if p[i] == 10 && p[i - 1] == 13 && p[i - 2] == 10 && p[i - 3] == 13 { n += 1 }
                i += 1
            }
            return n
        }
        for _ in 0..<heads { context.write(wrapOutboundOut(reply), promise: nil) }
        if heads > 0 { pending = true }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if pending {
            pending = false
            context.flush()
        }
    }
}

let arguments = CommandLine.arguments
if arguments.count == 4, let port = Int(arguments[2]), let origin = Int(arguments[3]) {
    if arguments[1] == "relay" { try runNIORelay(port: port, origin: origin) }
    if arguments[1] == "epoll" { runEpollRelay(port: port, origin: origin) }
}
guard arguments.count == 3, ["h1", "child", "conn"].contains(arguments[1]), let port = Int(arguments[2]) else {
    print("usage: h2floor h1|child|conn PORT, or h2floor relay|epoll PORT ORIGIN_PORT")
    exit(2)
}
let mode = arguments[1]
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            let ops = channel.pipeline.syncOperations
            switch mode {
            case "h1":
                try ops.addHandler(BytesAnswer())
            case "conn":
                try ops.addHandler(NIOHTTP2Handler(mode: .server))
                try ops.addHandler(ConnectionAnswer())
            default:
                _ = try ops.configureHTTP2Pipeline(mode: .server, connectionConfiguration: .init(), streamConfiguration: .init()) { stream in
                    stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(ChildAnswer()) }
                }
            }
        }
    }
    .bind(host: "127.0.0.1", port: port).wait()
print("h2floor \(mode) on 127.0.0.1:\(port)")
try server.closeFuture.wait()
