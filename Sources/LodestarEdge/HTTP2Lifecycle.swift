/// The life of an HTTP/2 server connection, told by its streams: a connection with none open for the idle timeout
/// is sent GOAWAY and closed; one told to quiesce (drain, shutdown) is sent GOAWAY naming the last stream it took
/// (RFC 9113 §6.8) and closes once the streams it has finish. (The grace period after a GOAWAY, past which the
/// connection closes whatever its streams do, is kept by the caller.)
///
/// One GOAWAY, as nginx sends: a stream the client opened while the GOAWAY was on its way is left unanswered, and
/// the client knows from the last stream id that it may send it again.
public struct HTTP2Lifecycle: Sendable {
    /// What the connection does next.
    public enum Action: Equatable, Sendable {
        case none
        /// Start (or restart) the idle timer.
        case armIdle
        /// A stream is open: the idle timer stops.
        case disarmIdle
        /// Send GOAWAY (NO_ERROR) naming `lastStreamID`; close at once when `close`, else when the last stream ends.
        case goAway(lastStreamID: Int32, close: Bool)
        /// The last stream after the GOAWAY ended: close.
        case close
    }

    /// The streams open now (ids: a few, at most the concurrent-stream limit).
    public private(set) var open: [Int32] = []
    /// The highest stream id the client opened.
    public private(set) var lastStreamID: Int32 = 0
    /// A GOAWAY went out.
    public private(set) var goingAway = false

    public init() {}

    /// The connection is ready for streams.
    public mutating func started() -> Action { open.isEmpty && !goingAway ? .armIdle : .none }

    public mutating func streamOpened(_ id: Int32) -> Action {
        guard !open.contains(id) else { return .none }
        open.append(id)
        lastStreamID = max(lastStreamID, id)
        return open.count == 1 && !goingAway ? .disarmIdle : .none
    }

    /// A stream ended (answered, reset, refused); one not known open changes nothing.
    public mutating func streamClosed(_ id: Int32) -> Action {
        guard let i = open.firstIndex(of: id) else { return .none }
        open.removeUnordered(at: i)
        guard open.isEmpty else { return .none }
        return goingAway ? .close : .armIdle
    }

    /// The idle timer went off.
    public mutating func idleElapsed() -> Action {
        guard open.isEmpty, !goingAway else { return .none }
        goingAway = true
        return .goAway(lastStreamID: lastStreamID, close: true)
    }

    /// Drain or shutdown: no new streams.
    public mutating func quiesce() -> Action {
        guard !goingAway else { return .none }
        goingAway = true
        return .goAway(lastStreamID: lastStreamID, close: open.isEmpty)
    }
}

extension Array {
    /// Removes the element at `i` by moving the last one into its place (O(1); the order is not kept): for the short
    /// lists of a connection's streams.
    @discardableResult
    public mutating func removeUnordered(at i: Int) -> Element {
        swapAt(i, count - 1)
        return removeLast()
    }
}
