import Foundation
import Synchronization

/// What the DNS tier knows of an edge's ability to serve.
public enum EdgeHealth: Sendable, Equatable {
    /// Serving normally.
    case healthy
    /// Must not be answered (dead, marked down by an operator, or draining).
    case down
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
