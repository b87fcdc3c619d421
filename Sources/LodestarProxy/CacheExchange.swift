import Foundation
import LodestarCache
import LodestarEdge
import LodestarTopology
import NIOCore
import NIOHTTP1
import Synchronization

/// What the cache does for one exchange: the key, the stored response being revalidated, the response being stored.
final class CacheExchange {
    let cache: EdgeCache
    /// Primary key: host and request target.
    let key: String
    /// The request's header fields as the cache policy reads them.
    let requestHeaders: HTTPFields
    /// `X-Cache` value of the answer: MISS, BYPASS, REVALIDATED…
    var label = "MISS"
    /// The stored response being revalidated; also what stale-if-error and grace may serve.
    var stored: CachedResponse?
    /// Validators sent to the origin (revalidation); the client's own conditionals are never forwarded.
    var conditional: [(String, String)] = []
    /// Whether the request may use the cache at all (GET/HEAD without a body), and may store what the origin sends.
    var cacheable = true
    /// A GET with `Range`: a complete fresh stored response answers it with 206; otherwise it passes through.
    var rangeRequested = false
    /// Unsafe method: a 2xx/3xx answer invalidates the URI (RFC 9111 §4.4).
    var invalidates = false
    /// The claim on the origin fetch that other requests for the key wait for.
    var claim: FillClaim?
    /// Waiting for another request's fetch of the same key.
    var waiting: Scheduled<Void>?
    /// When the upstream request was sent (epoch seconds).
    var requestTime: Int64 = 0
    /// The response being stored: status, fields to store, body so far (nil: not storing).
    var storing: (status: Int, headers: HTTPFields, responseTime: Int64)?
    var body: [ByteBuffer] = []
    var bodyBytes = 0
    /// The client's conditional matched the response being stored: it gets a 304 once the body is stored.
    var notModifiedToClient = false
    /// A 304 from the origin selected the stored response: serve this once the 304 has ended.
    var serveAfterEnd: CachedResponse?
    /// The origin's 304 head (whether its connection may be reused is read from it).
    var notModifiedHead: HTTPResponseHead?

    init(cache: EdgeCache, key: String, requestHeaders: HTTPFields) {
        self.cache = cache
        self.key = key
        self.requestHeaders = requestHeaders
    }

    /// Whether the client sent a conditional field (`If-…`), which the cache then answers itself.
    var hasConditional: Bool {
        requestHeaders.contains { field in
            field.name.utf8.count > 3 && field.name.utf8.prefix(3).elementsEqual("if-".utf8) { a, b in a | 0x20 == b }
                && Self.strippedFields.contains(field.name.lowercased())
        }
    }

    /// Client conditionals and range fields the cache answers itself (nginx's `proxy_cache` does the same).
    static let strippedFields: Set<String> = ["if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range"]

    /// Replaces the client's conditional fields with the cache's validators (cacheable requests only).
    func prepareUpstream(_ head: inout HTTPRequestHead) {
        guard cacheable else { return }
        for name in Self.strippedFields where head.headers.contains(name: name) { head.headers.remove(name: name) }
        for (name, value) in conditional { head.headers.add(name: name, value: value) }
    }

    /// Keeps a body chunk of a response being stored; gives up (and counts it) past `maxObjectBytes`.
    func collect(_ buffer: ByteBuffer) {
        guard storing != nil else { return }
        bodyBytes += buffer.readableBytes
        if bodyBytes > cache.settings.maxObjectBytes {
            storing = nil
            body = []
            cache.stats.tooLarge.add(1, ordering: .relaxed)
            claim?.release(.notStored)
            return
        }
        body.append(buffer)
    }

    /// The request header fields named by a response's Vary (what a later request must match).
    func varyFields(_ responseHeaders: HTTPFields) -> HTTPFields {
        var names = Set<String>()
        for (name, value) in responseHeaders where name.lowercased() == "vary" {
            for member in value.split(separator: ",") {
                names.insert(member.trimmingCharacters(in: .whitespaces).lowercased())
            }
        }
        if names.isEmpty { return [] }
        return requestHeaders.filter { names.contains($0.name.lowercased()) }
    }
}

extension CachedResponse {
    /// This stored response freshened by a 304 (RFC 9111 §3.2, §4.3.4): its header fields updated from the 304's, its
    /// times those of the revalidation.
    func freshened(by notModified: HTTPFields, requestTime: Int64, responseTime: Int64) -> CachedResponse {
        var updated = self
        updated.headers = CachePolicy.updatedHeaders(stored: info, notModified: notModified).map { (name: $0.0, value: $0.1) }
        updated.requestTime = requestTime
        updated.responseTime = responseTime
        return updated
    }

    /// A response to store, its body chunks copied into one right-sized buffer (so a stored entry pins no larger
    /// receive buffer).
    static func compacted(status: Int, headers: HTTPFields, chunks: [ByteBuffer], bytes: Int, allocator: ByteBufferAllocator,
                          requestTime: Int64, responseTime: Int64, varyRequestHeaders: HTTPFields) -> CachedResponse {
        var whole = allocator.buffer(capacity: bytes)
        for part in chunks { whole.writeImmutableBuffer(part) }
        return CachedResponse(status: status, headers: headers, body: bytes == 0 ? [] : [whole], requestTime: requestTime,
                              responseTime: responseTime, varyRequestHeaders: varyRequestHeaders)
    }
}

/// Seconds since the epoch, the cache policy's clock.
func epochSeconds() -> Int64 { Int64(Date().timeIntervalSince1970) }

extension HTTPHeaders {
    /// The fields as the cache policy reads them.
    var fieldList: HTTPFields { map { (name: $0.name, value: $0.value) } }
}
