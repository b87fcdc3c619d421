import LodestarEdge
import LodestarTopology
import NIOCore
import NIOHTTP1

/// The response filter's compression, on the full path as in the pass-through lanes (one rule,
/// `EdgeServer.compression`; one coding choice, `ContentCoding.choose`; one encoder, `Deflater`): the handler
/// compresses the body parts it writes, so no compressor sits in the pipeline pairing responses with requests.
extension ProxyHandler {
    /// Decides for the response head `headers` (status `status`) of `ex`: `Vary: Accept-Encoding` on an answer that
    /// could be compressed, and when the client accepts a coding and the answer is long enough and not
    /// `no-transform`, `Content-Encoding` (no `Content-Length`: HTTP/1.1 sends it chunked) and the exchange's
    /// encoder. Never for HEAD or an HTTP/1.0 client, which learns the end of an unsized body only from a close.
    func compressHead(_ ex: Exchange, _ headers: inout HTTPHeaders, status: HTTPResponseStatus) {
        guard compressing, ex.head.method != .HEAD, !ex.head.isHTTP10 else { return }
        let facts = CompressionFacts(
            contentType: headers.first(name: "content-type"),
            encoded: !headers[canonicalForm: "content-encoding"].isEmpty,
            length: headers.first(name: "content-length").flatMap { Int64($0) },
            noTransform: headers[canonicalForm: "cache-control"].contains { $0.lowercased() == "no-transform" },
            vary: headers[canonicalForm: "vary"])
        let coding = ContentCoding.choose(acceptEncoding: ex.head.headers["accept-encoding"])
        let settings = config.settings.compression
        let decision = EdgeServer.compression(status: Int(status.code), facts, accepts: coding != nil, settings: settings)
        if decision != .none && !EdgeServer.variesOnEncoding(facts.vary) { headers.add(name: "Vary", value: "Accept-Encoding") }
        guard decision == .compress, let coding,
              let deflater = Deflater(coding, level: settings.level, length: facts.length) else { return }
        headers.remove(name: "content-length")
        headers.replaceOrAdd(name: "Content-Encoding", value: coding.token)
        ex.deflater = deflater
    }

    /// Writes a body part of `ex`'s answer; when the exchange compresses, the encoder takes it and the compressed
    /// bytes go at the next `flushAnswer` or the end.
    func writeBody(_ buffer: ByteBuffer, _ ex: Exchange, context: ChannelHandlerContext) {
        guard let deflater = ex.deflater else {
            return context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        deflater.compress(buffer)
    }

    /// Sends what was written so far: the encoder's held bytes first (a streamed answer is not held back).
    func flushAnswer(context: ChannelHandlerContext) {
        if let deflater = exchange?.deflater {
            var out = context.channel.allocator.buffer(capacity: 0)
            deflater.flush(into: &out)
            if out.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(out))), promise: nil) }
        }
        context.flush()
    }

    /// The encoder's last bytes, before the response's end.
    func finishBody(_ ex: Exchange, context: ChannelHandlerContext) {
        guard let deflater = ex.deflater else { return }
        var out = context.channel.allocator.buffer(capacity: 0)
        deflater.finish(into: &out)
        if out.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(out))), promise: nil) }
    }
}
