import LodestarEdge
import LodestarTopology
import NIOCore

/// The answer as a pass-through lane writes it, the same for both clients: the response head's fields (the response
/// rules and the compression rule) and the body's data without the origin's framing, compressed or not, with its
/// trailer section.
extension PassThroughClient {
    /// The fields of the client's response head from the origin's `head` (read from `b`) into `sink`: the response
    /// rules (`HeaderRewriter.clientFields`: the lines kept as the origin sent them), `Location` rewritten when it
    /// names the origin, no `Content-Length` where the client's framing differs (a transfer coding, a body ended by the
    /// close, or one the edge compresses: the client gets it chunked or in DATA frames) or where the status has no
    /// body (1xx, 204, and 304 on HTTP/1.1, as the full path's encoders frame them, RFC 9110 §8.6). On an edge that
    /// compresses, the full path's compressor rules (`EdgeServer.compression`): `Vary: Accept-Encoding` on an answer
    /// that could be compressed, and — when the client accepts a coding, the answer is long enough and not
    /// `no-transform` — `Content-Encoding` and the encoder in `ex.answer.deflater`.
    func responseFields<Sink: HeaderSink>(_ head: HTTP1Wire.Response, _ b: UnsafeRawBufferPointer, _ ex: FastExchange,
                                          framing: ResponseFraming, keepAlive: Bool, compressing: Bool,
                                          into sink: inout Sink) {
        var rules = HeaderRewriter.ResponseRules(originHTTP2: false, clientHTTP2: ex.http2, clientHTTP10: false,
                                                 keepAlive: keepAlive, requestId: ex.requestId)
        let reframed = framing == .chunked || framing == .close
        let compressing = compressing && !ex.isHEAD
        var relocates = head.status >= 300 && head.status < 400
        var hasLength = false
        var facts = CompressionFacts()
        for f in head.fields {
            switch f.name.count {
            case 16 where HTTP1Wire.bytes(b, f.name, equal: "content-location"): relocates = true
            case 14 where HTTP1Wire.bytes(b, f.name, equal: "content-length"):
                hasLength = true
                if compressing { facts.length = Int64(HTTP1Wire.string(b, f.value)) }
            case 12 where compressing && HTTP1Wire.bytes(b, f.name, equal: "content-type"):
                facts.contentType = HTTP1Wire.string(b, f.value)
            case 16 where compressing && HTTP1Wire.bytes(b, f.name, equal: "content-encoding"): facts.encoded = true
            case 4 where compressing && HTTP1Wire.bytes(b, f.name, equal: "vary"):
                facts.vary += HTTP1Wire.string(b, f.value).split(separator: ",").map { $0.trimmingSpaces() }
            case 13 where compressing && HTTP1Wire.bytes(b, f.name, equal: "cache-control"):
                facts.noTransform = facts.noTransform || HTTPText.listNames(HTTP1Wire.string(b, f.value), "no-transform")
            default: continue
            }
        }
        let compression = compressing ? EdgeServer.compression(status: head.status, facts, accepts: ex.coding != nil,
                                                               settings: config.settings.compression) : .none
        if compression == .compress, let coding = ex.coding {
            ex.answer.deflater = Deflater(coding, level: config.settings.compression.level, length: facts.length)
        }
        if relocates, let server = ex.server, let host = ex.field("host") {
            rules.origin = ex.pool.runtime.labels[server]
            rules.publicBase = info.scheme + "://" + host
        }
        let fields = WireFields(bytes: b, fields: head.fields)
        let lengthToDrop = hasLength && (reframed || ex.answer.deflater != nil || head.status < 200 || head.status == 204
                                         || (head.status == 304 && !ex.http2))
        if lengthToDrop {
            HeaderRewriter.clientFields(fields.filter { !$0.nameEquals("content-length") }, rules, route: ex.route,
                                        config: config, into: &sink)
        } else {
            HeaderRewriter.clientFields(fields, rules, route: ex.route, config: config, into: &sink)
        }
        if compression != .none && !EdgeServer.variesOnEncoding(facts.vary) { sink.add(name: "Vary", value: "Accept-Encoding") }
        if let coding = ex.coding, ex.answer.deflater != nil { sink.add(name: "Content-Encoding", value: coding.token) }
    }

    /// The body's data in `bytes`, the origin's framing taken off, each part given to `part` as it is found: true at
    /// the body's end (bytes after it left in `bytes`), false for more to come, nil when the framing is broken.
    func bodyData(_ ex: FastExchange, _ bytes: inout ByteBuffer, _ part: (ByteBuffer) -> Void) -> Bool? {
        switch ex.answer.framing {
        case .none:
            return true
        case .length:
            if let body = ex.answer.counted(&bytes) { part(body) }
            return ex.answer.remaining == 0
        case .chunked:
            var spans: [Range<Int>] = []
            guard let used = bytes.withUnsafeReadableBytes({ b -> Int? in
                var section: Range<Int>?
                let used = ex.answer.scanner.scan(b, data: { spans.append($0) }, trailer: { section = $0 })
                if let section { ex.answer.trailerSection += b[section] }  // after the scan: one access at a time
                return used
            }) else { return nil }
            let start = bytes.readerIndex
            for span in spans {
                if let body = bytes.getSlice(at: start + span.lowerBound, length: span.count) { part(body) }
            }
            bytes.moveReaderIndex(forwardBy: used)
            return ex.answer.scanner.isDone
        case .close:
            if bytes.readableBytes > 0 { part(bytes) }
            bytes.moveReaderIndex(to: bytes.writerIndex)
            return false
        }
    }

    /// The compressed form of the body's data in `bytes` (`ex.answer.deflater`'s output; the stream finished at the
    /// body's end, else flushed so a streamed answer is not held back), and whether the body ended (nil: broken
    /// framing). The exchange counts the data before compression, as the full path counts it.
    func compressedBody(_ ex: FastExchange, _ deflater: Deflater, _ bytes: inout ByteBuffer,
                        allocator: ByteBufferAllocator) -> (ByteBuffer, ended: Bool)? {
        var out = allocator.buffer(capacity: 0)
        guard let ended = bodyData(ex, &bytes, { data in
            ex.bytesOut += Int64(data.readableBytes)
            deflater.compress(data)
        }) else { return nil }
        if ended { deflater.finish(into: &out) } else { deflater.flush(into: &out) }
        return (out, ended)
    }
}

extension FastExchange.Answer {
    /// The trailer fields of a chunked body that ended, without the ones HTTP/2 forbids (RFC 9113 §8.2.2), names in
    /// lower case — as swift-nio-http2's codec passes an HTTP/1.1 origin's trailers on the full path; empty when
    /// there were none.
    var http2Trailers: [(name: String, value: String)] {
        guard trailerSection.count > 2 else { return [] }
        return ChunkedScanner.trailerFields(trailerSection).compactMap { f in
            let name = f.name.lowercased()
            switch name {
            case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te": return nil
            default: return (name, f.value)
            }
        }
    }
}
