import Foundation
import LodestarCache
import LodestarEdge
import LodestarTopology
import NIOCore
import NIOHTTP1
import Synchronization

extension ProxyHandler {
    // MARK: Request side

    /// Entry of a request on a caching route: bypass, or look up (memory, then disk), then hit, revalidate or miss.
    func cacheBegin(_ ex: Exchange, cache: EdgeCache, host: String) {
        let c = CacheExchange(cache: cache, key: EdgeCache.key(host: host, uri: ex.head.uri), requestHeaders: ex.head.headers.fieldList)
        ex.cache = c
        let method = ex.head.method
        if method != .GET && method != .HEAD || ex.framing != .none {
            c.cacheable = false
            c.label = "BYPASS"
            c.invalidates = !Invalidation.safeMethods.contains(method.rawValue)
            cache.stats.bypass.add(1, ordering: .relaxed)
            return dispatch(ex)
        }
        c.rangeRequested = method == .GET && ex.head.headers.contains(name: "range")
        cacheLookup(ex, c, coalesce: true)
    }

    /// Memory tier, then (off-loop) the disk tier.
    func cacheLookup(_ ex: Exchange, _ c: CacheExchange, coalesce: Bool) {
        if let hit = c.cache.lookupMemory(key: c.key, requestHeaders: c.requestHeaders) {
            return cacheUse(ex, c, hit, coalesce: coalesce)
        }
        guard let context, let pending = c.cache.lookupDisk(key: c.key, requestHeaders: c.requestHeaders, on: context.eventLoop) else {
            return cacheMiss(ex, c, coalesce: coalesce)
        }
        pending.assumeIsolated().whenComplete { [weak self] result in
            guard let self, self.exchange === ex else { return }
            if case .success(let found?) = result {
                self.cacheUse(ex, c, found, coalesce: coalesce)
            } else {
                self.cacheMiss(ex, c, coalesce: coalesce)
            }
        }
    }

    /// A stored response was found: serve it, serve it stale (and refresh), or revalidate it (RFC 9111 §4).
    func cacheUse(_ ex: Exchange, _ c: CacheExchange, _ stored: CachedResponse, coalesce: Bool) {
        let now = epochSeconds()
        let facts = stored.facts ?? StoredFacts(stored.info)
        switch CachePolicy.decide(requestHeaders: c.requestHeaders, facts: facts, now: now) {
        case .fresh:
            c.cache.stats.hits.add(1, ordering: .relaxed)
            serveStored(ex, stored, label: "HIT", now: now, facts: facts)
        case .staleAllowed:
            c.cache.stats.stale.add(1, ordering: .relaxed)
            serveStored(ex, stored, label: "STALE", now: now)
        case .staleWhileRevalidate:
            c.cache.stats.stale.add(1, ordering: .relaxed)
            refreshInBackground(ex, c, stored)
            serveStored(ex, stored, label: "STALE", now: now)
        case .onlyIfCachedMiss:
            onlyIfCachedMiss(ex)
        case .revalidate:
            if c.rangeRequested { return bypassRange(ex, c) }
            c.stored = stored
            c.conditional = CachePolicy.conditionalHeaders(stored: stored.info)
            goToOrigin(ex, c, coalesce: coalesce)
        }
    }

    /// Nothing usable stored.
    func cacheMiss(_ ex: Exchange, _ c: CacheExchange, coalesce: Bool) {
        if CacheControl.request(c.requestHeaders).onlyIfCached { return onlyIfCachedMiss(ex) }
        goToOrigin(ex, c, coalesce: coalesce)
    }

    /// A Range request the store cannot answer goes to the origin as it is, and nothing is stored.
    private func bypassRange(_ ex: Exchange, _ c: CacheExchange) {
        c.cacheable = false
        c.stored = nil
        c.label = "BYPASS"
        c.cache.stats.bypass.add(1, ordering: .relaxed)
        dispatch(ex)
    }

    /// RFC 9111 §5.2.1.7: `only-if-cached` and nothing usable stored: 504.
    private func onlyIfCachedMiss(_ ex: Exchange) {
        ex.cache?.label = "MISS"
        exchange = nil
        local(ex.head, status: .gatewayTimeout, body: "not in the cache (only-if-cached)\n", close: false,
              extra: [("X-Cache", "MISS")], requestId: ex.requestId, start: ex.start, route: ex.route)
    }

    /// Fetches from the origin; with `coalesce`, only one request per key does so at a time and the others wait
    /// (at most `lockTimeoutMs`) for its result.
    func goToOrigin(_ ex: Exchange, _ c: CacheExchange, coalesce: Bool) {
        if c.rangeRequested { return bypassRange(ex, c) }
        guard coalesce, ex.head.method == .GET, let context else {
            c.requestTime = epochSeconds()
            return dispatch(ex)
        }
        let loop = context.eventLoop
        let handler = NIOLoopBound(Weak(self), eventLoop: loop)
        let waiter = NIOLoopBound(ex, eventLoop: loop)
        let claim = c.cache.claimOrWait(key: c.key) { outcome in
            loop.execute { handler.value.object?.fillEnded(waiter.value, outcome) }
        }
        if let claim {
            c.claim = claim
            c.requestTime = epochSeconds()
            return dispatch(ex)
        }
        let timeout = TimeAmount.milliseconds(Int64(c.cache.settings.lockTimeoutMs))
        c.waiting = loop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, self.exchange === ex, c.waiting != nil else { return }
            c.waiting = nil
            c.requestTime = epochSeconds()
            self.dispatch(ex)  // waited long enough: fetch without coalescing
        }
    }

    /// The fetch this request waited for ended: look again (stored) or fetch itself (not stored).
    func fillEnded(_ ex: Exchange, _ outcome: FillOutcome) {
        guard exchange === ex, let c = ex.cache, let waiting = c.waiting else { return }
        waiting.cancel()
        c.waiting = nil
        switch outcome {
        case .stored: cacheLookup(ex, c, coalesce: false)
        case .notStored:
            c.requestTime = epochSeconds()
            dispatch(ex)
        }
    }

    // MARK: Response side

    /// Looks at the origin's response head. Returns true when the cache answered instead (304 revalidation or stale on
    /// a 5xx); otherwise sets up storing and the client's 304, and the normal relay goes on.
    func cacheResponseHead(_ ex: Exchange, _ c: CacheExchange, _ head: HTTPResponseHead) -> Bool {
        let status = Int(head.status.code)
        let fields = head.headers.fieldList
        let now = epochSeconds()
        if c.invalidates {
            let host = ex.head.headers.first(name: "host").map(Admission.hostWithoutPort) ?? ""
            for target in Invalidation.targets(method: ex.head.method.rawValue, status: status, requestURI: ex.head.uri,
                                               responseHeaders: fields, authority: host) {
                c.cache.purge(key: EdgeCache.key(host: host, uri: target))
            }
            return false
        }
        guard c.cacheable else { return false }
        if let stored = c.stored {
            if status == 304 {
                // RFC 9111 §4.3.3/§4.3.4: the 304 freshens the stored response, which is served.
                var updated = stored
                if CachePolicy.notModifiedSelects(stored: stored.info, notModified: fields) {
                    updated = stored.freshened(by: fields, requestTime: c.requestTime, responseTime: now)
                    c.cache.store(key: c.key, response: updated)
                    c.claim?.release(.stored)
                } else {
                    c.cache.purge(key: c.key)
                }
                c.cache.stats.revalidated.add(1, ordering: .relaxed)
                c.serveAfterEnd = updated
                c.notModifiedHead = head
                return true
            }
            if status >= 500, CachePolicy.canServeStaleOnError(stored: stored.info, now: now, requestHeaders: c.requestHeaders,
                                                                graceSeconds: Int64(ex.route.route.cache.graceSeconds)) {
                abortUpstream(ex)
                c.cache.stats.stale.add(1, ordering: .relaxed)
                serveStored(ex, stored, label: "STALE", now: now)
                return true
            }
        }
        c.cache.stats.misses.add(1, ordering: .relaxed)
        let storable = ex.head.method == .GET
            && CachePolicy.isStorable(method: "GET", requestHeaders: c.requestHeaders, status: status, responseHeaders: fields)
        let declared = head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
        if storable && declared <= c.cache.settings.maxObjectBytes {
            c.storing = (status, CachePolicy.headersToStore(responseHeaders: fields).map { (name: $0.0, value: $0.1) }, now)
            let probe = StoredResponseInfo(status: status, headers: fields, requestTime: c.requestTime, responseTime: now)
            c.notModifiedToClient = status == 200 && c.hasConditional
                && CachePolicy.clientConditionMatches(requestHeaders: c.requestHeaders, stored: probe)
        } else {
            if storable { c.cache.stats.tooLarge.add(1, ordering: .relaxed) }
            c.claim?.release(.notStored)  // waiters go to the origin themselves
        }
        return false
    }

    /// The origin's response ended. Stores what was collected; returns true when the cache answers the client now
    /// (a 304 revalidation, or a 304 for the client's own conditional).
    func cacheResponseEnd(_ ex: Exchange, _ c: CacheExchange) -> Bool {
        if let (status, headers, responseTime) = c.storing, let context {
            let response = CachedResponse.compacted(status: status, headers: headers, chunks: c.body, bytes: c.bodyBytes,
                                                    allocator: context.channel.allocator, requestTime: c.requestTime,
                                                    responseTime: responseTime, varyRequestHeaders: c.varyFields(headers))
            c.storing = nil
            c.body = []
            let stored = c.cache.store(key: c.key, response: response)
            c.claim?.release(stored ? .stored : .notStored)
            if c.notModifiedToClient {
                releaseUpstream(ex, response: ex.responseHead)
                serveStored(ex, response, label: "MISS", now: epochSeconds())
                return true
            }
            return false
        }
        c.claim?.release(.notStored)
        if let updated = c.serveAfterEnd {
            releaseUpstream(ex, response: c.notModifiedHead)
            serveStored(ex, updated, label: "REVALIDATED", now: epochSeconds())
            return true
        }
        return false
    }

    /// On an origin failure (connect error, timeout, no healthy server): serves the stored response when
    /// `stale-if-error` or the route's grace allows (RFC 5861 §4). Returns true when it did.
    func cacheServeStaleOnError(_ ex: Exchange, _ c: CacheExchange) -> Bool {
        guard c.cacheable, let stored = c.stored, exchange === ex else { return false }
        let now = epochSeconds()
        guard CachePolicy.canServeStaleOnError(stored: stored.info, now: now, requestHeaders: c.requestHeaders,
                                               graceSeconds: Int64(ex.route.route.cache.graceSeconds)) else { return false }
        c.cache.stats.stale.add(1, ordering: .relaxed)
        serveStored(ex, stored, label: "STALE", now: now)
        return true
    }

    // MARK: Answers from the store

    /// Answers the exchange from a stored response: the stored head rewritten as for any origin response, `Age`,
    /// `X-Cache`, the body (none for HEAD), or a 304 when the client's own conditional matches (RFC 9111 §4.3.2).
    func serveStored(_ ex: Exchange, _ stored: CachedResponse, label: String, now: Int64, facts: StoredFacts? = nil) {
        guard let context, exchange === ex else { return }
        ex.cache?.claim?.release(.notStored)
        let c = ex.cache
        let age = (facts ?? stored.facts ?? StoredFacts(stored.info)).currentAge(now: now)
        let notModified = stored.status == 200 && c.map {
            $0.hasConditional && CachePolicy.clientConditionMatches(requestHeaders: $0.requestHeaders, stored: stored.info)
        } ?? false
        var headers = HTTPHeaders()
        headers.reserveCapacity(stored.headers.count + 6)
        for (name, value) in stored.headers {
            if HeaderRewriter.nameEquals(name, "age") || HeaderRewriter.nameEquals(name, "content-length") { continue }
            if notModified && HeaderRewriter.nameEquals(name, "content-type") { continue }
            headers.add(name: name, value: value)
        }
        var range = RangeAnswer.full
        if let c, c.rangeRequested, !notModified, stored.status == 200, ex.head.method == .GET {
            range = ByteRange.answer(requestHeaders: c.requestHeaders, storedHeaders: stored.headers, length: stored.bodyBytes)
        }
        var status = notModified ? HTTPResponseStatus.notModified : HTTPResponseStatus(statusCode: stored.status)
        switch range {
        case .full: break
        case .partial(let start, let end):
            status = .partialContent
            headers.replaceOrAdd(name: "Content-Range", value: "bytes \(start)-\(end)/\(stored.bodyBytes)")
        case .unsatisfiable:
            status = .rangeNotSatisfiable
            headers.replaceOrAdd(name: "Content-Range", value: "bytes */\(stored.bodyBytes)")
        }
        let keepAlive = clientKeepAlive(ex.head)
        ex.keepAliveClient = keepAlive
        let originHead = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
        var out = HeaderRewriter.clientResponse(originHead, route: ex.route, config: config, requestId: ex.requestId,
                                                clientVersion: ex.head.version, keepAlive: keepAlive)
        out.headers.add(name: "Age", value: String(age))
        out.headers.add(name: "X-Cache", value: label)
        let hasBody = !notModified && status.mayHaveResponseBody
        var body = stored.body
        var length = stored.bodyBytes
        switch range {
        case .full: break
        case .partial(let start, let end):
            body = Self.slice(stored.body, from: start, count: end - start + 1)
            length = end - start + 1
        case .unsatisfiable:
            body = []
            length = 0
        }
        if hasBody { out.headers.add(name: "Content-Length", value: String(length)) }
        if hasBody { compressHead(ex, &out.headers, status: out.status) }
        ex.responseHead = originHead
        ex.cache?.label = label
        context.write(wrapOutboundOut(.head(out)), promise: nil)
        if hasBody && ex.head.method != .HEAD, ex.deflater == nil, info.scheme == "http", let file = stored.attachment as? BodyFile,
           file.length == stored.bodyBytes, length > 0 {
            // Zero-copy: the kernel sends the pages of the body's memory file (the file lives until the write is done).
            var offset = 0
            if case .partial(let start, _) = range { offset = start }
            if let region = file.region(on: context.eventLoop, from: offset, count: length) {
                let promise = context.eventLoop.makePromise(of: Void.self)
                promise.futureResult.whenComplete { _ in withExtendedLifetime(file) {} }
                context.write(wrapOutboundOut(.body(.fileRegion(region))), promise: promise)
                body = []
            }
        }
        if hasBody && ex.head.method != .HEAD {
            for part in body { writeBody(part, ex, context: context) }
            ex.bytes.out = Int64(length)
            ex.cache?.cache.stats.bytesServed.add(length, ordering: .relaxed)
        }
        endExchange(ex, trailers: nil, context: context)
    }

    /// `count` bytes from offset `start` of a body kept as chunks (views of the stored buffers, nothing copied).
    static func slice(_ chunks: [ByteBuffer], from start: Int, count: Int) -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        var skip = start
        var left = count
        for chunk in chunks where left > 0 {
            let n = chunk.readableBytes
            if skip >= n {
                skip -= n
                continue
            }
            let take = min(n - skip, left)
            if let piece = chunk.getSlice(at: chunk.readerIndex + skip, length: take) { out.append(piece) }
            left -= take
            skip = 0
        }
        return out
    }

    // MARK: Background refresh

    /// stale-while-revalidate (RFC 5861 §3): one conditional fetch per key in the background; the answer is stored.
    func refreshInBackground(_ ex: Exchange, _ c: CacheExchange, _ stored: CachedResponse) {
        guard let claim = c.cache.claimIfIdle(key: c.key) else { return }
        c.cache.stats.refreshes.add(1, ordering: .relaxed)
        var head = HeaderRewriter.upstreamRequest(ex.head, route: ex.route, config: config, client: info.clientText,
                                                  scheme: info.scheme, requestId: ex.requestId + "-refresh", framing: .none)
        head.method = .GET
        for name in CacheExchange.strippedFields where head.headers.contains(name: name) { head.headers.remove(name: name) }
        for (name, value) in CachePolicy.conditionalHeaders(stored: stored.info) { head.headers.add(name: name, value: value) }
        let refresher = CacheRefresher(claim: claim, pool: ex.pool, head: head, stored: stored, requestHeaders: c.requestHeaders,
                                       varyFields: c.varyFields(stored.headers))
        refresher.start()
    }
}
