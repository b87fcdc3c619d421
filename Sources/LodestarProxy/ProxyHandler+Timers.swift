import LodestarCache
import LodestarEdge
import LodestarTopology
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Per-connection timers (head, body, keep-alive, origin response) and the access log.
extension ProxyHandler {
    // MARK: Timers and logging

    func tick() {
        guard let context, !closing else { return }
        let now = NIODeadline.now()
        let limits = config.settings.limits
        // A client that takes none of its answer (nginx's send_timeout), during the exchange or after it (a cache HIT
        // is queued whole; over HTTP/2 the stream's writability comes back as window updates let frames leave): the
        // exchange, if any, ends, and the connection or stream closes.
        if clock.stalled(writable: context.channel.isWritable, buffered: isHTTP2 ? nil : ClientClock.buffered(socket: context.channel),
                         now: now, limitMs: limits.sendTimeoutMs) {
            shared.stats.timeouts.add(1, ordering: .relaxed)
            if let ex = exchange {
                abortUpstream(ex)
                exchange = nil
                finish(ex, status: ex.responseHead.map { Int($0.status.code) } ?? 499, note: "client send timeout")
            }
            closing = true
            return context.close(promise: nil)
        }
        if let ex = exchange {
            // A client that stopped sending its body (not one we stopped reading because the origin is slow to take it).
            if ex.sentUpstream, ex.upstream != nil, !ex.requestEnded, ex.framing != .none, !readPending,
               now - ex.times.lastClientActivity > .milliseconds(Int64(limits.bodyTimeoutMs)) {
                shared.stats.timeouts.add(1, ordering: .relaxed)
                abortUpstream(ex)
                exchange = nil
                if ex.responseHead == nil {
                    local(ex.head, status: .requestTimeout, body: "request body timed out\n", close: true,
                          requestId: ex.requestId, start: ex.start, route: ex.route)
                } else {
                    finish(ex, status: 408, note: "client body timeout")
                    context.close(promise: nil)
                }
                return
            }
            // A gRPC deadline (`grpc-timeout`) that passed: DEADLINE_EXCEEDED, whatever the phase.
            if let deadline = ex.times.deadline, now > deadline, ex.upstream != nil {
                shared.stats.timeouts.add(1, ordering: .relaxed)
                return perform(ex.machine.timedOut(), ex)
            }
            // An origin that stopped answering: counted once the request is sent, and not while the edge itself holds
            // the origin's reads because the client is slow to take the response.
            if let up = ex.upstream, ex.requestEnded || ex.framing == .none, !up.handler.holdReads,
               now - ex.times.lastUpstreamActivity > .milliseconds(Int64(ex.pool.runtime.pool.responseTimeoutMs)) {
                shared.stats.timeouts.add(1, ordering: .relaxed)
                perform(ex.machine.timedOut(), ex)
            }
            return
        }
        // An answer still leaving is not idle.
        if clock.blockedSince != nil { return clock.idleSince = now }
        if isHTTP2 {
            // The answer has left and the stream is still here a while later: the client has not ended its request (a
            // stream whose halves have both ended is gone). RFC 9113 §8.1 lets the server end it; left alone it waited
            // for the client's END_STREAM for ever. (Idle HTTP/2 connections are their `ConnectionLane`'s.)
            if now - clock.idleSince > Self.unendedRequestGrace {
                closing = true
                context.close(promise: nil)
            }
            return
        }
        if let first = tracker?.firstByteAt {
            if now - first > .milliseconds(Int64(limits.headerTimeoutMs)) {
                shared.stats.timeouts.add(1, ordering: .relaxed)
                let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "-")
                local(head, status: .requestTimeout, body: "request head timed out\n", close: true)
            }
        } else {
            let allowed = requestsServed == 0 ? limits.headerTimeoutMs : limits.keepAliveTimeoutMs
            if now - clock.idleSince > .milliseconds(Int64(allowed)) || (shared.isDraining && requestsServed > 0) {
                closing = true
                context.close(promise: nil)
            }
        }
    }

    /// How long an HTTP/2 stream whose answer has left may wait for the end of its request before it is reset.
    static let unendedRequestGrace = TimeAmount.seconds(1)

    func finish(_ ex: Exchange, status: Int, note: String?) {
        shared.exchangeEnded(pool: ex.pool, route: ex.route, times: ex.times, status: status, bytesOut: ex.bytes.out,
                             method: ex.head.method.rawValue, uri: ex.head.uri, client: info.clientText, server: ex.server,
                             requestId: ex.requestId, note: note, cache: ex.cache?.label,
                             accessLog: config.settings.accessLog)
    }

    func report(_ transition: HealthTransition?, _ pool: LoopPool) {
        if let transition { shared.healthChanged(transition, pool: pool.runtime) }
    }
}
