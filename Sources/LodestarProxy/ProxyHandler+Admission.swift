import LodestarCache
import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The request phase: admission (`Admission`, pure) and the edge's own interim answers.
extension ProxyHandler {
    // MARK: Request start

    /// The admission phase (pure, `Admission`), then the cache phase or dispatch.
    func begin(_ original: HTTPRequestHead, context: ChannelHandlerContext) {
        var head = original
        // Absolute-form target (RFC 9112 §3.2.2): its authority replaces Host, and the origin gets origin-form.
        if let (authority, originForm) = Admission.splitAbsoluteForm(head.uri) {
            head.uri = originForm
            head.headers.replaceOrAdd(name: "Host", value: authority)
        }
        shared.stats.requests.add(1, ordering: .relaxed)
        // An HTTP/2 extended CONNECT (RFC 8441) arrives rewritten as an upgrade request, marked by `StreamFrameRewriter`;
        // on HTTP/1.1 the marker means nothing and goes.
        let marked = head.headers.contains(name: StreamFrameRewriter.marker)
        let extendedConnect = isHTTP2 && marked
        // (Only when present: removing copies the head's fields, shared with the decoder's copy, on every request.)
        if marked { head.headers.remove(name: StreamFrameRewriter.marker) }
        let state = loop.state
        let request = AdmissionRequest(
            method: head.method.rawValue, target: head.uri, isHTTP10: head.isHTTP10, isHTTP2: isHTTP2 && !extendedConnect,
            fields: Array(head.headers),
            fieldCount: head.headers.count, client: info.client, now: NIODeadline.now().uptimeNanoseconds,
            openTunnels: shared.openTunnels.load(ordering: .relaxed))
        let admitted: Admitted
        let verdict = presetVerdict ?? state.config.admission.admit(request)
        presetVerdict = nil
        switch verdict {
        case .reject(let r):
            switch r.kind {
            case .rateLimited: shared.stats.rateLimited.add(1, ordering: .relaxed)
            case .denied: shared.stats.denied.add(1, ordering: .relaxed)
            case .protocolError, .noRoute, .tooMany: break
            }
            return local(head, status: HTTPResponseStatus(statusCode: r.status), body: r.body, close: r.close,
                         extra: r.retryAfter.map { [("Retry-After", String($0))] } ?? [], linger: r.linger)
        case .proceed(let a):
            admitted = a
        }
        if admitted.closeAfter { finishing = true }  // the parser reads nothing after an upgrade request
        let route = state.config.routes[admitted.route]
        if admitted.upgrade != nil && state.config.pools[route.poolIndex].pool.protocol != .http1 {
            return local(head, status: .notImplemented, body: "upgrades need an HTTP/1.1 origin pool\n", close: true)
        }
        let requestId: String
        if let given = head.headers.first(name: config.settings.requestIdHeader), HeaderRewriter.isAcceptableRequestId(given) {
            requestId = given
        } else {
            requestId = shared.makeRequestId()
        }
        let ex = Exchange(head: head, route: route, pool: state.pools[route.poolIndex], requestId: requestId,
                          framing: admitted.framing, upgrade: admitted.upgrade)
        exchange = ex
        // Expect: 100-continue — the edge will read the body, so it says so itself (the origin never sees Expect).
        if admitted.expectContinue { sendContinue(context: context) }
        // The cache slot: between routing and dispatch (a hit never reaches `dispatch`).
        if route.route.cache.enabled, admitted.upgrade == nil, let cache = state.cache {
            return cacheBegin(ex, cache: cache, host: admitted.host)
        }
        dispatch(ex)
    }

    func sendContinue(context: ChannelHandlerContext) {
        sendInterim(HTTPResponseHead(version: .http1_1, status: .continue), context: context)
    }

    /// Writes an interim (1xx) response head now.
    func sendInterim(_ head: HTTPResponseHead, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
    }
}
