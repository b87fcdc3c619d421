import Foundation
import LodestarTopology
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// A small origin server for local tries and demos (`lodestar origin`): `GET /` answers a page naming the origin and
/// the edge that forwarded the request (cacheable for 10 s), `/static/NAME` a small asset cacheable for an hour with
/// an ETag, `/api/time` the current time (`no-store`: never cached), `/bytes/N` N bytes (N ≤ 64 MiB, cacheable for a
/// minute), `/healthz` ok, and `/ws` is a WebSocket echo (RFC 6455: messages up to 16 MiB come back as sent, pings
/// get pongs, a close is answered). The listener also takes h2c with prior knowledge, where `/lodestar.sample.Echo/*`
/// is a gRPC echo: every message comes back as sent (unary and streaming alike), then `grpc-status: 0`.
public enum SampleOrigin {
    /// Binds and serves until the group shuts down.
    public static func start(listen: ListenAddress, name: String, group: any EventLoopGroup) async throws -> any Channel {
        let respond: @Sendable (HTTPRequestHead, ByteBufferAllocator) -> SimpleResponse = { head, allocator in
            answer(head, name: name, allocator: allocator)
        }
        return try await SimpleHTTPServer.bind(listen, group: group, upgraders: { [webSocketUpgrader()] }, http2Stream: { stream in
            try stream.pipeline.syncOperations.addHandler(GRPCEcho(respond: respond))
        }, respond: respond)
    }

    /// Upgrades `GET /ws` to a WebSocket echo.
    static func webSocketUpgrader() -> NIOWebSocketServerUpgrader {
        NIOWebSocketServerUpgrader(
            maxFrameSize: 16 << 20,
            shouldUpgrade: { channel, head in
                let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
                return channel.eventLoop.makeSucceededFuture(path == "/ws" ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOWebSocketFrameAggregator(
                        minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1 << 16, maxAccumulatedFrameSize: 16 << 20))
                    try channel.pipeline.syncOperations.addHandler(WebSocketEcho())
                }
            })
    }

    static func answer(_ h: HTTPRequestHead, name: String, allocator: ByteBufferAllocator) -> SimpleResponse {
        let path = h.uri.split(separator: "?").first.map(String.init) ?? h.uri
        var status = HTTPResponseStatus.ok
        var type = "text/plain; charset=utf-8"
        var body = allocator.buffer(capacity: 256)
        var cacheControl = "public, max-age=10"
        var extra: [(String, String)] = []
        if path == "/healthz" {
            body.writeString("ok\n")
            cacheControl = "no-store"
        } else if path == "/api/time" {
            body.writeString("\(Date().timeIntervalSince1970)\n")
            cacheControl = "no-store"
        } else if path.hasPrefix("/static/"), path.utf8.count > 8, path.utf8.count <= 200 {
            let asset = String(path.dropFirst(8))
            type = asset.hasSuffix(".css") ? "text/css"
                : asset.hasSuffix(".js") ? "application/javascript" : "text/plain; charset=utf-8"
            body.writeString("/* static asset \(escape(asset)) */\n")
            cacheControl = "public, max-age=3600"
            // A stable validator: FNV-1a of the asset name.
            var hash: UInt32 = 2_166_136_261
            for b in asset.utf8 { hash = (hash ^ UInt32(b)) &* 16_777_619 }
            extra.append(("ETag", "\"\(String(hash, radix: 16))\""))
        } else if path.hasPrefix("/bytes/"), let n = Int(path.dropFirst(7)), (0...(64 << 20)).contains(n) {
            type = "application/octet-stream"
            body.writeRepeatingByte(UInt8(ascii: "x"), count: n)
            cacheControl = "public, max-age=60"
        } else if path == "/" || path == "/index.html" {
            type = "text/html; charset=utf-8"
            let via = h.headers.first(name: "via") ?? "-"
            let client = h.headers.first(name: "x-forwarded-for") ?? "-"
            body.writeString("""
            <!doctype html><title>Lodestar sample origin</title>
            <h1>Served by origin \(escape(name))</h1>
            <p>Host: \(escape(h.headers.first(name: "host") ?? "-"))<br>Via: \(escape(via))<br>Client: \(escape(client))</p>

            """)
        } else {
            status = .notFound
            body.writeString("not found\n")
            cacheControl = "no-store"
        }
        return SimpleResponse(status: status, contentType: type, body: body,
                              headers: [("X-Origin", name), ("Cache-Control", cacheControl)] + extra)
    }

    /// HTML-escapes text put into the page.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}

/// The sample origin's `/ws`: echoes text and binary messages, answers pings, answers a close and closes.
final class WebSocketEcho: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    private var closeSent = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            guard !closeSent else { return context.close(promise: nil) }
            closeSent = true
            var payload = frame.unmaskedData
            let code = payload.readSlice(length: min(2, payload.readableBytes)) ?? context.channel.allocator.buffer(capacity: 0)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: code)))
                .whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }
}

/// An HTTP/2 stream of the sample origin: gRPC calls to `/lodestar.sample.Echo/` are echoed message by message (the
/// length-prefixed stream comes back as it arrives); anything else is answered like an HTTP/1.1 request.
final class GRPCEcho: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let respond: @Sendable (HTTPRequestHead, ByteBufferAllocator) -> SimpleResponse
    private var head: HTTPRequestHead?
    private var echoing = false

    init(respond: @escaping @Sendable (HTTPRequestHead, ByteBufferAllocator) -> SimpleResponse) { self.respond = respond }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            let contentType = h.headers.first(name: "content-type")?.lowercased() ?? ""
            echoing = h.method == .POST && contentType.hasPrefix("application/grpc") && h.uri.hasPrefix("/lodestar.sample.Echo/")
            if echoing {
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: "application/grpc")
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: .ok, headers: headers))),
                                      promise: nil)
            }
        case .body(let bytes):
            if echoing { context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil) }
        case .end:
            guard let h = head else { return }
            head = nil
            if echoing {
                var trailers = HTTPHeaders()
                trailers.add(name: "grpc-status", value: "0")
                context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
                return
            }
            let r = respond(h, context.channel.allocator)
            // Names are lower-cased by swift-nio-http2's codec on the way out.
            context.write(wrapOutboundOut(.head(r.head(version: .http2))), promise: nil)
            if h.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(r.body))), promise: nil) }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
