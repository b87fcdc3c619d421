import LodestarEdge
import LodestarTopology
import NIOHTTP1

/// Where the rewriter writes fields: NIO's `HTTPHeaders`, or wire bytes (`WireHead`) in the pass-through lane.
protocol HeaderSink {
    mutating func add(name: String, value: String)
    /// A field passed on as it is.
    mutating func copy<F: HeaderFieldRef>(_ field: F)
}

extension HTTPHeaders: HeaderSink {
    mutating func copy<F: HeaderFieldRef>(_ field: F) { add(name: field.name, value: field.value) }
}

/// Header rewriting between client and origin (RFC 9110 §7.6: hop-by-hop fields, Via; de-facto X-Forwarded-*).
enum HeaderRewriter {
    /// ASCII case-insensitive equality of a header name with a lower-case name.
    @inline(__always)
    static func nameEquals(_ name: String, _ lower: String) -> Bool { HTTPText.nameEquals(name, lower) }

    @inline(__always)
    static func isListed(_ name: String, in lowerNames: [String]) -> Bool {
        for n in lowerNames where nameEquals(name, n) { return true }
        return false
    }

    /// Lower-case tokens named in `Connection` fields (other than close/keep-alive, which are hop-by-hop anyway).
    static func connectionTokens<Fields: Sequence>(_ headers: Fields) -> [String] where Fields.Element: HeaderFieldRef {
        var out = [String]()
        for field in headers where field.nameEquals("connection") {
            if field.valueEquals("keep-alive") || field.valueEquals("close") { continue }  // the common case, no string
            let value = field.value
            for token in value.split(separator: ",") {
                let t = token.trimmingSpaces().lowercased()
                if !t.isEmpty && t != "close" && t != "keep-alive" { out.append(t) }
            }
        }
        return out
    }

    /// The request head sent upstream.
    /// `http2`: the origin speaks HTTP/2, where the body is framed by DATA frames (no Transfer-Encoding) and
    /// `TE: trailers` is kept (gRPC needs it; RFC 9113 §8.2.2 allows it). To an HTTP/1.1 origin TE is hop-by-hop and
    /// goes.
    /// The method as it goes on the wire. SwiftNIO parses `M-SEARCH` into `.MSEARCH` but writes that case without the
    /// hyphen, which origins refuse; it goes out as it came in.
    static func wireMethod(_ method: HTTPMethod) -> HTTPMethod {
        if case .MSEARCH = method { return .RAW(value: "M-SEARCH") }
        return method
    }

    static func upstreamRequest(_ head: HTTPRequestHead, route: CompiledRoute, config: EdgeConfig, client: String,
                                scheme: String, requestId: String, framing: BodyFraming, http2: Bool = false) -> HTTPRequestHead {
        var out = HTTPHeaders()
        out.reserveCapacity(head.headers.count + 6)
        let request = RequestFacts(method: head.method.rawValue, viaHTTP2: head.version.major == 2, client: client,
                                   scheme: scheme, requestId: requestId, framing: framing, originHTTP2: http2)
        upstreamFields(head.headers.fieldRefs, request, route: route, config: config, into: &out)
        return HTTPRequestHead(version: .http1_1, method: Self.wireMethod(head.method), uri: head.uri, headers: out)
    }

    /// What the request rules need besides the fields.
    struct RequestFacts {
        var method: String
        /// The client spoke HTTP/2 (the `Via` entry says so).
        var viaHTTP2: Bool
        var client: String
        var scheme: String
        var requestId: String
        var framing: BodyFraming
        var originHTTP2: Bool
    }

    /// The request's fields as they go upstream, written into `out` (NIO's `HTTPHeaders` or the pass-through lane's
    /// wire bytes): one home for the request rules whatever the lane.
    static func upstreamFields<Fields: Sequence, Sink: HeaderSink>(
        _ fields: Fields, _ r: RequestFacts, route: CompiledRoute, config: EdgeConfig, into out: inout Sink
    ) where Fields.Element: HeaderFieldRef {
        let extra = connectionTokens(fields)
        var forwardedFor: String?
        var via: String?
        var host: String?
        var trailers = false
        for field in fields {
            let kind = field.kind
            if kind == .te && field.value.lowercased().split(separator: ",").contains(where: { $0.trimmingSpaces() == "trailers" }) {
                trailers = true
            }
            switch kind {
            case .hopByHop, .te, .expect, .contentLength, .xForwardedProto, .xForwardedHost: continue
            default: break
            }
            if !extra.isEmpty && field.isListed(in: extra) { continue }
            if kind == .xForwardedFor {
                let value = field.value
                forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
                continue
            }
            if kind == .via {
                let value = field.value
                via = via.map { "\($0), \(value)" } ?? value
                continue
            }
            if field.nameEquals(config.requestIdHeader) { continue }
            if kind == .host { host = field.value }
            if !route.requestRemove.isEmpty && field.isListed(in: route.requestRemove) { continue }
            out.copy(field)
        }
        for f in route.route.requestHeaders.set { out.add(name: f.name, value: f.value) }
        out.add(name: "X-Forwarded-For", value: forwardedFor.map { "\($0), \(r.client)" } ?? r.client)
        out.add(name: "X-Forwarded-Proto", value: r.scheme)
        if let host { out.add(name: "X-Forwarded-Host", value: host) }
        // RFC 9110 §7.6.3: the protocol this hop received the message in.
        let mine = r.viaHTTP2 ? config.via2 : config.via
        out.add(name: "Via", value: via.map { "\($0), \(mine)" } ?? mine)
        out.add(name: config.settings.requestIdHeader, value: r.requestId)
        switch r.framing {
        case .length(let n): out.add(name: "Content-Length", value: String(n))
        case .chunked: if !r.originHTTP2 { out.add(name: "Transfer-Encoding", value: "chunked") }
        case .none:
            if r.method == "POST" || r.method == "PUT" || r.method == "PATCH" { out.add(name: "Content-Length", value: "0") }
        }
        if trailers && r.originHTTP2 { out.add(name: "TE", value: "trailers") }
    }

    /// The response head sent to the client. `keepAlive` says whether the client connection stays open.
    /// `origin` is the server's `host:port` and `publicBase` the client-facing `scheme://host[:port]`: a `Location` or
    /// `Content-Location` that points at the origin itself is rewritten to the public name (nginx's default
    /// `proxy_redirect`), so redirects never reveal an origin address.
    static func clientResponse(_ head: HTTPResponseHead, route: CompiledRoute, config: EdgeConfig, requestId: String,
                               clientVersion: HTTPVersion, keepAlive: Bool, origin: String? = nil,
                               publicBase: String? = nil) -> HTTPResponseHead {
        var out = HTTPHeaders()
        out.reserveCapacity(head.headers.count + 4)
        let facts = ResponseRules(originHTTP2: head.version.major == 2, clientHTTP2: clientVersion.major == 2,
                                  clientHTTP10: clientVersion.major == 1 && clientVersion.minor == 0, keepAlive: keepAlive,
                                  requestId: requestId, origin: origin, publicBase: publicBase)
        clientFields(head.headers.fieldRefs, facts, route: route, config: config, into: &out)
        if clientVersion.major == 2 {
            return HTTPResponseHead(version: .http2, status: head.status, headers: out)  // RFC 9113 §8.2.2
        }
        return HTTPResponseHead(version: clientVersion.minor == 0 ? .http1_0 : .http1_1, status: head.status, headers: out)
    }

    /// What the response rules need besides the fields. `origin` is the server's `host:port` and `publicBase` the
    /// client-facing `scheme://host[:port]` (see `clientResponse`).
    struct ResponseRules {
        var originHTTP2: Bool
        var clientHTTP2: Bool
        var clientHTTP10: Bool
        var keepAlive: Bool
        var requestId: String
        var origin: String?
        var publicBase: String?
    }

    /// The response's fields as they go to the client, written into `out` (either lane): one home for the response
    /// rules.
    static func clientFields<Fields: Sequence, Sink: HeaderSink>(
        _ fields: Fields, _ r: ResponseRules, route: CompiledRoute, config: EdgeConfig, into out: inout Sink
    ) where Fields.Element: HeaderFieldRef {
        let extra = connectionTokens(fields)
        var via: String?
        let expose = route.route.exposeOriginServer
        for field in fields {
            let kind = field.kind
            // Transfer-Encoding goes too: the client connection is framed anew.
            if kind.isHopByHop || (!extra.isEmpty && field.isListed(in: extra)) { continue }
            if !expose && kind == .server { continue }
            if kind == .via {
                let value = field.value
                via = via.map { "\($0), \(value)" } ?? value
                continue
            }
            if field.nameEquals(config.requestIdHeader) { continue }
            if !route.responseRemove.isEmpty && field.isListed(in: route.responseRemove) { continue }
            if let origin = r.origin, let publicBase = r.publicBase, kind == .location || kind == .contentLocation,
               let rewritten = rewriteOriginURL(field.value, origin: origin, publicBase: publicBase) {
                out.add(name: field.name, value: rewritten)
                continue
            }
            out.copy(field)
        }
        for f in route.route.responseHeaders.set { out.add(name: f.name, value: f.value) }
        let mine = r.originHTTP2 ? config.via2 : config.via
        out.add(name: "Via", value: via.map { "\($0), \(mine)" } ?? mine)
        out.add(name: config.settings.requestIdHeader, value: r.requestId)
        if r.clientHTTP2 { return }
        if !r.keepAlive {
            out.add(name: "Connection", value: "close")
        } else if r.clientHTTP10 {
            out.add(name: "Connection", value: "keep-alive")
        }
    }

    /// The fields of an edge-made answer (error pages and refusals), either lane: a plain-text body of `bodyBytes`
    /// (nil: a gRPC answer, whose status goes in trailers), the request id, `Via`, `extra` (`Retry-After`) and the
    /// `Connection` field when one is due.
    static func localFields<Sink: HeaderSink>(bodyBytes: Int?, requestId: String, config: EdgeConfig,
                                              extra: [(String, String)], connection: String?, into out: inout Sink) {
        if let bodyBytes {
            out.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            out.add(name: "Content-Length", value: String(bodyBytes))
        } else {
            out.add(name: "Content-Type", value: "application/grpc")
        }
        out.add(name: config.settings.requestIdHeader, value: requestId)
        out.add(name: "Via", value: config.via)
        for (n, v) in extra { out.add(name: n, value: v) }
        if let connection { out.add(name: "Connection", value: connection) }
    }

    /// `http://ORIGIN/rest` or `https://ORIGIN/rest` (ORIGIN = `host:port`, or `host` alone when the port is the
    /// scheme's default) → `publicBase/rest`; nil when the URL points elsewhere.
    static func rewriteOriginURL(_ url: String, origin: String, publicBase: String) -> String? {
        guard let (schemeLength, defaultPort) = HTTPText.httpScheme(url) else { return nil }
        let rest = url.dropFirst(schemeLength)
        let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<end].lowercased()
        guard authority == origin || (origin.hasSuffix(defaultPort) && authority == origin.dropLast(defaultPort.count)) else {
            return nil
        }
        return publicBase + rest[end...]
    }

    /// A request id the client sent may be passed through when it is short and plain.
    static func isAcceptableRequestId(_ s: String) -> Bool {
        let u = s.utf8
        guard !u.isEmpty, u.count <= 128 else { return false }
        return u.allSatisfy { b in
            (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 45 || b == 95 || b == 46 || b == 58
        }
    }
}

/// The header names the rewriter treats specially, told apart in one pass over the name: its length picks the few
/// names it could be, then one case-insensitive comparison (per header, instead of one comparison per special name).
enum KnownHeader: Equatable {
    /// Hop-by-hop (RFC 9110 §7.6.1 and the de-facto `Keep-Alive`/`Proxy-Connection`: `Connection`, `Keep-Alive`,
    /// `Proxy-Connection`, `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-Authorization`, `Proxy-Authenticate`),
    /// other than `TE`, which an HTTP/2 origin may be sent.
    case hopByHop
    case te, expect, contentLength, xForwardedFor, xForwardedProto, xForwardedHost, via, host, server, location
    case contentLocation, other

    /// A field that describes one connection and is never forwarded as it is (`TE` included).
    var isHopByHop: Bool { self == .hopByHop || self == .te }

    init(_ name: String) {
        var name = name
        self = name.withUTF8 { Self.classify($0) }
    }

    init(bytes: UnsafeRawBufferPointer) {
        self = Self.classify(bytes.assumingMemoryBound(to: UInt8.self))
    }

    private static func classify(_ b: UnsafeBufferPointer<UInt8>) -> KnownHeader {
        func its(_ lower: StaticString) -> Bool {
            guard lower.utf8CodeUnitCount == b.count else { return false }
            let l = lower.utf8Start
            for i in 0..<b.count {
                let x = b[i]
                if ((x >= 65 && x <= 90) ? x | 0x20 : x) != l[i] { return false }
            }
            return true
        }
        switch b.count {
        case 2: return its("te") ? .te : .other
        case 3: return its("via") ? .via : .other
        case 4: return its("host") ? .host : .other
        case 6: return its("expect") ? .expect : its("server") ? .server : .other
        case 7: return its("trailer") || its("upgrade") ? .hopByHop : .other
        case 8: return its("location") ? .location : .other
        case 10: return its("connection") || its("keep-alive") ? .hopByHop : .other
        case 14: return its("content-length") ? .contentLength : .other
        case 15: return its("x-forwarded-for") ? .xForwardedFor : .other
        case 16:
            if its("proxy-connection") { return .hopByHop }
            return its("content-location") ? .contentLocation : its("x-forwarded-host") ? .xForwardedHost : .other
        case 17: return its("transfer-encoding") ? .hopByHop : its("x-forwarded-proto") ? .xForwardedProto : .other
        case 18: return its("proxy-authenticate") ? .hopByHop : .other
        case 19: return its("proxy-authorization") ? .hopByHop : .other
        default: return .other
        }
    }
}
