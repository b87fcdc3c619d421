import Foundation
import LodestarProxy
import LodestarTopology
import NIOCore
import NIOHTTP1

/// Who may call an admin listener. `/healthz` and `/readyz` are open (load balancers and probes call them). On a
/// loopback listener reads are open and changes need the token when one is configured; off loopback everything else
/// needs `Authorization: Bearer <token>` (the topology refuses such a listener without an `admin` section).
public struct AdminGuard: Sendable {
    /// The bearer token (nil: none configured).
    public let token: String?
    /// True when the listener is on a loopback address.
    public let loopback: Bool

    /// A guard for a listener at `listener`.
    public init(listener: ListenAddress, token: String?) {
        self.token = token
        loopback = listener.host.isLoopback
    }

    /// Nil when `head` may proceed, else the 401 to send.
    public func refusal(_ head: HTTPRequestHead, path: String, allocator: ByteBufferAllocator) -> SimpleResponse? {
        let read = head.method == .GET || head.method == .HEAD
        if read && (path == "/healthz" || path == "/readyz") { return nil }
        if loopback && (read || token == nil) { return nil }
        if let token, Self.presented(head).map({ Self.constantTimeEqual($0, token) }) == true { return nil }
        let why = token == nil ? "this admin listener has no token configured; changes are refused\n"
            : "a valid Authorization: Bearer token is needed\n"
        return SimpleResponse(status: .unauthorized, contentType: "text/plain", body: allocator.buffer(string: why),
                              headers: [("WWW-Authenticate", "Bearer realm=\"lodestar\""), ("Cache-Control", "no-store")])
    }

    /// The token of an `Authorization: Bearer …` field.
    static func presented(_ head: HTTPRequestHead) -> String? {
        guard let value = head.headers.first(name: "authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    /// Compares without stopping at the first difference (no timing hint about the token).
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return diff == 0
    }
}

/// What a process lets the admin API do beyond reading: reload, drain and the extra `/status` fields.
public struct AdminHooks: Sendable {
    /// Re-reads the topology (and GeoIP database); returns whether it was taken and a message.
    public var reload: (@Sendable () -> (ok: Bool, message: String))?
    /// Starts (true) or ends (false) an operator drain with a reason; returns the drain state as JSON.
    public var drain: (@Sendable (_ on: Bool, _ reason: String) -> String)?
    /// Extra JSON members for `/status` (e.g. `"config":{…},"drain":{…}`), without the braces.
    public var status: (@Sendable () -> String)?
    /// False while the process should get no new traffic (draining).
    public var ready: (@Sendable () -> Bool)?

    public init() {}
}

/// The admin listeners' HTTP/1.1 endpoint: each complete request is answered whole by a router.
public enum AdminHTTP {
    /// Binds `address`; the channel closes when the group shuts down.
    public static func bind(_ address: ListenAddress, group: any EventLoopGroup,
                            respond: @escaping @Sendable (HTTPRequestHead, ByteBufferAllocator) -> SimpleResponse) async throws -> any Channel {
        try await SimpleHTTPServer.bind(address, group: group, respond: respond)
    }
    /// The decoded `key=value` pairs of a request target's query (last one wins).
    public static func query(_ uri: String) -> [String: String] {
        guard let q = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
        var out = [String: String]()
        for pair in q.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            let key = String(kv[0])
            let value = kv.count == 2 ? String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" : ""
            out[key] = value
        }
        return out
    }

    /// The path of a request target.
    public static func path(_ uri: String) -> String {
        uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
    }

    /// A small answer.
    public static func reply(_ status: HTTPResponseStatus, _ type: String, _ body: String, allocator: ByteBufferAllocator) -> SimpleResponse {
        SimpleResponse(status: status, contentType: type, body: allocator.buffer(string: body), headers: [("Cache-Control", "no-store")])
    }
}
