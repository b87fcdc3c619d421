import NIOCore

import LodestarEdge
import LodestarTopology

/// How often a client connection's or stream's timeouts are checked: a quarter of the shortest of them, within
/// 50 ms…1 s.
func clientTickInterval(_ limits: ProxyLimits) -> TimeAmount {
    let smallest = min(limits.headerTimeoutMs, limits.keepAliveTimeoutMs, limits.bodyTimeoutMs, limits.sendTimeoutMs)
    return .milliseconds(Int64(max(50, min(1000, smallest / 4))))
}

/// A stream's handler with timeouts to check (`ProxyHandler`, `LaneStream`).
protocol StreamTicking: AnyObject {
    func tick()
}

/// One repeating timer for all the streams of an HTTP/2 connection: the handler of each stream joins when it is
/// added to its stream channel and leaves when removed, and every tick calls `tick()` on each member (body, origin
/// response and gRPC deadline timeouts). A timer per stream cost every HTTP/2 request a scheduled task — a timer-heap
/// insert and cancel, a promise and a closure, about one allocation in eight on that path. Used on the connection's
/// event loop only; stopped when the connection closes.
final class StreamTicker {
    private let loop: any EventLoop
    /// A few at a time (a connection's streams in progress): a list searched in place costs less than hashing.
    private var members: [any StreamTicking] = []
    private var task: RepeatedTask?
    private var stopped = false

    init(loop: any EventLoop) { self.loop = loop }

    /// Adds a stream's handler; the first one starts the timer, ticking every `interval` from then on.
    func join(_ handler: any StreamTicking, interval: TimeAmount) {
        guard !stopped else { return }
        if !members.contains(where: { $0 === handler }) { members.append(handler) }
        guard task == nil else { return }
        // Held weakly, so that the task does not keep a closed connection's ticker alive.
        let bound = NIOLoopBound(Weak(self), eventLoop: loop)
        task = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in bound.value.object?.fire() }
    }

    /// Called once when the last stream leaves (set by the connection when its client stopped sending).
    var whenEmpty: (() -> Void)?

    /// Removes a stream's handler (its stream ended or failed).
    func leave(_ handler: any StreamTicking) {
        if let i = members.firstIndex(where: { $0 === handler }) { members.removeUnordered(at: i) }
        if members.isEmpty, let done = whenEmpty {
            whenEmpty = nil
            done()
        }
    }

    /// Number of streams ticked.
    var count: Int { members.count }

    /// Ends the timer and forgets every member (the connection closed).
    func stop() {
        stopped = true
        task?.cancel()
        task = nil
        members.removeAll()
    }

    /// One tick for every member; a member that leaves during the tick (a timeout that ends its stream) is still
    /// ticked in this round, which its handler ignores once closing.
    private func fire() {
        for handler in members { handler.tick() }
    }
}
