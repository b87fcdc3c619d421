import LodestarEdge
import XCTest

/// The upstream phase's state machine: which events lead to which actions and health outcomes (retry rules as
/// nginx's proxy_next_upstream "error timeout": only while nothing of the request can have been acted on).
final class UpstreamExchangeTests: XCTestCase {
    /// A balancer over `servers` available ones that returns the first not excluded.
    private func picker(_ servers: Int) -> (ServerSet) -> Int? {
        { exclude in (0..<servers).first { !exclude.contains($0) } }
    }

    /// The tried servers: the first inline, retries after it; removing the first moves the next up; equal by content.
    func test_serverSetKeepsWhatWasTriedInOrder() {
        var set = ServerSet()
        XCTAssertTrue(set.isEmpty)
        XCTAssertFalse(set.contains(0))
        set.append(2)
        set.append(0)
        set.append(5)
        XCTAssertEqual(set, [2, 0, 5])
        XCTAssertTrue(set.contains(0) && set.contains(2) && set.contains(5))
        XCTAssertFalse(set.contains(1))
        set.remove(2)
        XCTAssertEqual(set, [0, 5], "the next one moves up")
        XCTAssertFalse(set.contains(2))
        set.remove(5)
        set.remove(0)
        XCTAssertTrue(set.isEmpty)
        XCTAssertEqual(set, ServerSet())
    }

    func test_happyPath_connectSendRelayComplete() {
        var m = UpstreamExchange(idempotent: true, hasBody: false, retries: 2)
        XCTAssertEqual(m.start(pick: picker(3)), .init(action: .connect(server: 0)))
        XCTAssertEqual(m.connected(), .init(action: .sendRequest))
        XCTAssertEqual(m.responseHead(status: 200), .init(action: .relay, health: (0, true)))
        XCTAssertEqual(m.responseEnded(requestEnded: true, originKeepsAlive: true), .init(action: .complete(reuseConnection: true)))
        XCTAssertEqual(m.state, .done)
        XCTAssertEqual(m.lastServer, 0)
    }

    func test_noServerAvailableIs503WithRetryAfter() {
        var m = UpstreamExchange(idempotent: true, hasBody: false, retries: 2)
        XCTAssertEqual(m.start(pick: picker(0)), .init(action: .fail(status: 503, reason: "no healthy origin server", retryAfter: 5)))
    }

    func test_connectFailureRetriesElsewhereThen502() {
        var m = UpstreamExchange(idempotent: true, hasBody: false, retries: 1)
        _ = m.start(pick: picker(3))
        XCTAssertEqual(m.connectFailed(timedOut: false, pick: picker(3)), .init(action: .connect(server: 1), health: (0, false)))
        XCTAssertEqual(m.connectFailed(timedOut: false, pick: picker(3)),
                       .init(action: .fail(status: 502, reason: "origin unreachable", retryAfter: nil), health: (1, false)),
                       "one retry allowed")
        XCTAssertEqual(m.tried, [0, 1])
    }

    func test_connectTimeoutWithoutRetryIs504() {
        var m = UpstreamExchange(idempotent: false, hasBody: true, retries: 2)
        _ = m.start(pick: picker(2))
        XCTAssertEqual(m.connectFailed(timedOut: true, pick: picker(2)),
                       .init(action: .fail(status: 504, reason: "origin connect timed out", retryAfter: nil), health: (0, false)),
                       "a POST is not sent again")
    }

    func test_closedBeforeAnswerRetriesBodilessIdempotentRequestsOnly() {
        var get = UpstreamExchange(idempotent: true, hasBody: false, retries: 2)
        _ = get.start(pick: picker(2))
        _ = get.connected()
        XCTAssertEqual(get.closedBeforeResponse(reusedConnection: false, pick: picker(2)),
                       .init(action: .connect(server: 1), health: (0, false)))
        var post = UpstreamExchange(idempotent: false, hasBody: true, retries: 2)
        _ = post.start(pick: picker(2))
        _ = post.connected()
        XCTAssertEqual(post.closedBeforeResponse(reusedConnection: false, pick: picker(2)),
                       .init(action: .fail(status: 502, reason: "origin closed the connection", retryAfter: nil), health: (0, false)))
        var put = UpstreamExchange(idempotent: true, hasBody: true, retries: 2)
        _ = put.start(pick: picker(2))
        _ = put.connected()
        XCTAssertEqual(put.closedBeforeResponse(reusedConnection: false, pick: picker(2)).action,
                       .fail(status: 502, reason: "origin closed the connection", retryAfter: nil),
                       "a body the adapter no longer holds cannot be replayed")
    }

    /// A PUT whose small body is still held goes again — on the same server when it was a pooled connection the origin
    /// had closed; a POST never does.
    func test_heldBodyOfIdempotentRequestIsReplayed() {
        var put = UpstreamExchange(idempotent: true, hasBody: true, retries: 0)
        _ = put.start(pick: picker(1))
        _ = put.connected()
        XCTAssertEqual(put.closedBeforeResponse(reusedConnection: true, bodyReplayable: true, pick: picker(1)),
                       .init(action: .connect(server: 0)))
        var post = UpstreamExchange(idempotent: false, hasBody: true, retries: 2)
        _ = post.start(pick: picker(2))
        _ = post.connected()
        XCTAssertEqual(post.closedBeforeResponse(reusedConnection: true, bodyReplayable: true, pick: picker(2)).action,
                       .fail(status: 502, reason: "origin closed the connection", retryAfter: nil))
    }

    /// A pooled connection the origin had closed (its keep-alive timeout) is nobody's fault: no health mark, the same
    /// server may be chosen again, and it does not use up a retry.
    func test_staleReusedConnectionIsRetriedOnTheSameServerWithoutBlame() {
        var m = UpstreamExchange(idempotent: true, hasBody: false, retries: 0)
        _ = m.start(pick: picker(1))
        _ = m.connected()
        XCTAssertEqual(m.closedBeforeResponse(reusedConnection: true, pick: picker(1)), .init(action: .connect(server: 0)))
        _ = m.connected()
        XCTAssertEqual(m.closedBeforeResponse(reusedConnection: false, pick: picker(1)).action,
                       .fail(status: 502, reason: "origin closed the connection", retryAfter: nil))
    }

    func test_responseStatusesAndHealth() {
        var m = UpstreamExchange(idempotent: true, hasBody: false, retries: 0)
        _ = m.start(pick: picker(1))
        _ = m.connected()
        XCTAssertEqual(m.responseHead(status: 503), .init(action: .relay, health: (0, false)), "5xx is relayed and counted")
        var bad = UpstreamExchange(idempotent: true, hasBody: false, retries: 0)
        _ = bad.start(pick: picker(1))
        _ = bad.connected()
        XCTAssertEqual(bad.responseHead(status: 101).action, .fail(status: 502, reason: "invalid response from the origin", retryAfter: nil),
                       "101 nobody asked for")
        var ws = UpstreamExchange(idempotent: true, hasBody: false, retries: 0, upgrade: true)
        _ = ws.start(pick: picker(1))
        _ = ws.connected()
        XCTAssertEqual(ws.responseHead(status: 101), .init(action: .tunnel, health: (0, true)))
    }

    func test_timeoutsBeforeAndDuringTheResponse() {
        var m = UpstreamExchange(idempotent: true, hasBody: false, retries: 0)
        _ = m.start(pick: picker(1))
        _ = m.connected()
        XCTAssertEqual(m.timedOut(), .init(action: .fail(status: 504, reason: "origin timed out", retryAfter: nil), health: (0, false)))
        var r = UpstreamExchange(idempotent: true, hasBody: false, retries: 0)
        _ = r.start(pick: picker(1))
        _ = r.connected()
        _ = r.responseHead(status: 200)
        XCTAssertEqual(r.timedOut().action, .abortClient(reason: "origin timed out mid-response"))
        XCTAssertEqual(r.closedMidResponse().action, .none, "already over")
    }

    func test_lateEventsDoNothing() {
        var m = UpstreamExchange(idempotent: true, hasBody: false, retries: 0)
        XCTAssertEqual(m.connected().action, .none)
        _ = m.start(pick: picker(1))
        m.cancel()
        XCTAssertEqual(m.connected().action, .none)
        XCTAssertEqual(m.responseHead(status: 200).action, .none)
        XCTAssertEqual(m.start(pick: picker(1)).action, .none)
    }
}
