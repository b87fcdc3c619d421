import Foundation
import LodestarGeo
import Synchronization

/// What the DNS tier knows of an edge's ability to serve.
public enum EdgeHealth: Sendable, Equatable, CustomStringConvertible {
    /// Serving normally.
    case healthy
    /// Alive as far as anyone knows, but a probe of it failed (gossip suspicion): still answered, with a short TTL
    /// so that clients come back soon if it turns out dead.
    case suspect
    /// Above its capacity watermark: this fraction (0...1) of the queries it would get go to the next edge instead.
    case overloaded(shed: Double)
    /// Must not be answered (dead, marked down by an operator, or draining).
    case down

    /// Whether the edge may be in an answer at all.
    public var isUp: Bool { self != .down }

    public var description: String {
        switch self {
        case .healthy: "up"
        case .suspect: "suspect"
        case .overloaded(let shed): "overloaded (shedding \(Int((shed * 100).rounded())) %)"
        case .down: "down"
        }
    }
}

/// The source of edge health the selector consults; the gossip tier feeds a richer one later.
public protocol HealthView: Sendable {
    /// Current health of the edge with this id.
    func health(ofEdge id: String) -> EdgeHealth
    /// Bumped on every change, so answer caches know when to forget what they hold.
    var generation: UInt64 { get }
}

/// Every edge healthy unless an operator marked it down (admin file or `--down` flag); thread-safe and replaceable at run time.
public final class StaticHealthView: HealthView {
    private let down: Mutex<Set<String>>
    private let changes = Atomic<UInt64>(0)

    public init(down: Set<String> = []) {
        self.down = Mutex(down)
        downCount.store(down.count, ordering: .releasing)
    }

    public var generation: UInt64 { changes.load(ordering: .acquiring) }

    /// How many edges are down; when none is (the usual case) no lock is taken.
    private let downCount = Atomic<Int>(0)

    public func health(ofEdge id: String) -> EdgeHealth {
        guard downCount.load(ordering: .acquiring) > 0 else { return .healthy }
        return down.withLock { $0.contains(id) } ? .down : .healthy
    }

    /// Replaces the set of edges marked down.
    public func setDown(_ ids: Set<String>) {
        down.withLock { $0 = ids }
        downCount.store(ids.count, ordering: .releasing)
        changes.add(1, ordering: .releasing)
    }

    /// Edges currently marked down.
    public var downEdges: Set<String> { down.withLock { $0 } }

    /// Parses a down file: one edge id per line, `#` comments and blank lines ignored.
    public static func parseDownFile(_ text: String) -> Set<String> {
        var ids = Set<String>()
        for line in text.split(whereSeparator: \.isNewline) {
            let body = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let id = body.trimmingCharacters(in: .whitespaces)
            if !id.isEmpty { ids.insert(id) }
        }
        return ids
    }
}

/// Edge health fed at run time (by the gossip tier) over an operator's down set: thread-safe; the generation moves
/// only when something changed, so answer caches stay valid through unchanged updates.
public final class LiveHealthView: HealthView {
    private struct State {
        var live: [String: EdgeHealth] = [:]
        var operatorDown: Set<String> = []
    }

    private let state = Mutex(State())
    private let changes = Atomic<UInt64>(0)
    /// Health of an edge nothing was heard about (fail open: the zone still answers before gossip converges).
    public let unknown: EdgeHealth

    /// A view where edges not (yet) reported are `unknown`.
    public init(unknown: EdgeHealth = .healthy, operatorDown: Set<String> = []) {
        self.unknown = unknown
        state.withLock { $0.operatorDown = operatorDown }
    }

    public var generation: UInt64 { changes.load(ordering: .acquiring) }

    public func health(ofEdge id: String) -> EdgeHealth {
        state.withLock { s in
            if s.operatorDown.contains(id) { return .down }
            return s.live[id] ?? unknown
        }
    }

    /// Replaces the reported health of every edge (edges left out become `unknown`); true when anything changed.
    @discardableResult
    public func update(_ live: [String: EdgeHealth]) -> Bool {
        let changed = state.withLock { s -> Bool in
            guard s.live != live else { return false }
            s.live = live
            return true
        }
        if changed { changes.add(1, ordering: .releasing) }
        return changed
    }

    /// Replaces the set of edges an operator marked down (they stay down whatever gossip says).
    public func setDown(_ ids: Set<String>) {
        let changed = state.withLock { s -> Bool in
            guard s.operatorDown != ids else { return false }
            s.operatorDown = ids
            return true
        }
        if changed { changes.add(1, ordering: .releasing) }
    }

    /// The edges an operator marked down.
    public var operatorDown: Set<String> { state.withLock { $0.operatorDown } }

    /// What is reported now (for status pages).
    public var reported: [String: EdgeHealth] { state.withLock { $0.live } }
}
