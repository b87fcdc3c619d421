import LodestarEdge
import XCTest

/// An HTTP/2 connection's idle timeout and graceful GOAWAY, told by its streams (`HTTP2Lifecycle`).
final class HTTP2LifecycleTests: XCTestCase {
    func test_theIdleClockRunsOnlyWithoutStreams() {
        var life = HTTP2Lifecycle()
        XCTAssertEqual(life.started(), .armIdle)
        XCTAssertEqual(life.streamOpened(1), .disarmIdle)
        XCTAssertEqual(life.streamOpened(3), .none)
        XCTAssertEqual(life.streamOpened(3), .none, "a stream counted once")
        XCTAssertEqual(life.streamClosed(1), .none)
        XCTAssertEqual(life.streamClosed(7), .none, "a stream not known open changes nothing")
        XCTAssertEqual(life.idleElapsed(), .none, "a late timer with a stream open does nothing")
        XCTAssertEqual(life.streamClosed(3), .armIdle)
        XCTAssertEqual(life.streamClosed(3), .none)
        XCTAssertEqual(life.idleElapsed(), .goAway(lastStreamID: 3, close: true))
        XCTAssertEqual(life.idleElapsed(), .none, "one GOAWAY")
        XCTAssertEqual(life.quiesce(), .none)
    }

    func test_quiesceWaitsForTheOpenStreams() {
        var life = HTTP2Lifecycle()
        _ = life.started()
        _ = life.streamOpened(5)
        _ = life.streamOpened(9)
        XCTAssertEqual(life.quiesce(), .goAway(lastStreamID: 9, close: false))
        XCTAssertEqual(life.streamOpened(11), .none, "a stream already on its way is still counted")
        XCTAssertEqual(life.streamClosed(9), .none)
        XCTAssertEqual(life.streamClosed(5), .none)
        XCTAssertEqual(life.streamClosed(11), .close, "the last one ends: close")
        XCTAssertEqual(life.started(), .none)
    }

    func test_quiesceOfAnIdleConnectionClosesAtOnce() {
        var life = HTTP2Lifecycle()
        XCTAssertEqual(life.quiesce(), .goAway(lastStreamID: 0, close: true))
        XCTAssertEqual(life.idleElapsed(), .none)
    }
}
