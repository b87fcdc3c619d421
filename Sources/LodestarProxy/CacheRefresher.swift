import Foundation
import LodestarCache
import LodestarEdge
import LodestarTopology
import NIOCore
import NIOHTTP1
import Synchronization

/// A background revalidation (stale-while-revalidate): sends one conditional GET on its own upstream connection,
/// stores the new or freshened response, and lets go. It holds itself alive until done.
final class CacheRefresher: UpstreamOwner {
    private let claim: FillClaim
    private let pool: LoopPool
    private let head: HTTPRequestHead
    private let stored: CachedResponse
    private let requestHeaders: HTTPFields
    private let varyFields: HTTPFields
    private var selfReference: CacheRefresher?
    private var connection: UpstreamConnection?
    private var server: Int?
    private var response: HTTPResponseHead?
    private var body: [ByteBuffer] = []
    private var bodyBytes = 0
    private var storing = false
    private let requestTime = epochSeconds()

    init(claim: FillClaim, pool: LoopPool, head: HTTPRequestHead, stored: CachedResponse, requestHeaders: HTTPFields,
         varyFields: HTTPFields) {
        self.claim = claim
        self.pool = pool
        self.head = head
        self.stored = stored
        self.requestHeaders = requestHeaders
        self.varyFields = varyFields
    }

    /// Picks a server and sends the request; gives up quietly when none is available.
    func start() {
        let now = NIODeadline.now()
        guard let server = pool.pick(uri: head.uri, now: now.uptimeNanoseconds, exclude: []) else { return done() }
        selfReference = self
        self.server = server
        pool.runtime.health.begin(server)
        if let idle = pool.takeIdle(server: server) { return send(on: idle) }
        pool.connect(server: server).whenComplete { [self] result in
            switch result {
            case .success(let conn): self.send(on: conn)
            case .failure: self.done()
            }
        }
        // Never outlive the pool's response timeout.
        let bound = NIOLoopBound(self, eventLoop: pool.eventLoop)
        pool.eventLoop.scheduleTask(in: .milliseconds(Int64(pool.runtime.pool.responseTimeoutMs))) {
            bound.value.abandon()
        }
    }

    private func send(on conn: UpstreamConnection) {
        conn.owner = self
        conn.uses += 1
        connection = conn
        conn.channel.write(HTTPClientRequestPart.head(head), promise: nil)
        conn.channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    private func abandon() {
        guard selfReference != nil else { return }
        if let c = connection { c.owner = nil; c.channel.close(promise: nil); connection = nil }
        done()
    }

    private func done() {
        if let server { pool.runtime.health.end(server); self.server = nil }
        claim.release(.notStored)
        selfReference = nil
    }

    func upstreamRead(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let h) where h.status.code < 200:
            return  // interim responses mean nothing to a refresh
        case .head(let h):
            response = h
            let fields = h.headers.fieldList
            let cache = claim.cache
            if h.status.code == 304 {
                if CachePolicy.notModifiedSelects(stored: stored.info, notModified: fields) {
                    cache.store(key: claim.key, response: stored.freshened(by: fields, requestTime: requestTime,
                                                                           responseTime: epochSeconds()))
                }
            } else if CachePolicy.isStorable(method: "GET", requestHeaders: requestHeaders, status: Int(h.status.code),
                                             responseHeaders: fields) {
                storing = true
            }
        case .body(let b):
            guard storing else { return }
            bodyBytes += b.readableBytes
            if bodyBytes > claim.cache.settings.maxObjectBytes { storing = false; body = [] } else { body.append(b) }
        case .end:
            if storing, let h = response, let conn = connection {
                let headers = CachePolicy.headersToStore(responseHeaders: h.headers.fieldList).map { (name: $0.0, value: $0.1) }
                let fresh = CachedResponse.compacted(status: Int(h.status.code), headers: headers, chunks: body, bytes: bodyBytes,
                                                     allocator: conn.channel.allocator, requestTime: requestTime,
                                                     responseTime: epochSeconds(), varyRequestHeaders: varyFields)
                claim.cache.store(key: claim.key, response: fresh)
            }
            if let conn = connection {
                connection = nil
                pool.finish(conn, response: response, requestEnded: true)
            }
            done()
        }
    }

    func upstreamReadComplete() {}
    func upstreamWritabilityChanged(_ writable: Bool) {}
    func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?) {
        guard connection === self.connection else { return }
        self.connection = nil
        done()
    }
}
