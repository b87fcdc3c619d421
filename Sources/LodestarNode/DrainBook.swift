import Foundation
import LodestarGossip
import Logging

/// A DNS node's operator drains: the `OperatorDrains` table the DNS nodes gossip and merge (whichever node an operator
/// asks, all of them agree), kept in a small state file so a restarted node comes back with them.
package final class DrainBook: @unchecked Sendable {
    package let nodeId: String
    /// The state file (`dns.stateFile`, or `<nodeId>.state.json` beside the topology).
    package let path: String
    private let logger: Logger
    private let lock = NSLock()
    private var table = OperatorDrains()
    /// Called with the encoded table after every change made here or learned from a peer (the gossip runtime
    /// publishes it).
    package var onChange: (@Sendable ([UInt8]) -> Void)?

    /// Undrains are remembered this long (ms) so they reach every node before they are forgotten.
    package static let tombstoneMs: UInt64 = 10 * 60 * 1000

    package init(nodeId: String, path: String, logger: Logger) {
        self.nodeId = nodeId
        self.path = path
        self.logger = logger
        load()
    }

    package static func nowMs() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }

    /// The drains in force.
    package var active: [String: OperatorDrains.Entry] { lock.withLock { table.active } }
    /// The table as gossiped.
    package var encoded: [UInt8] { lock.withLock { table.encoded() } }

    /// An operator's drain (`active`) or undrain of `target`, asked of this node.
    package func set(_ target: String, active: Bool, reason: String) {
        let bytes = lock.withLock { () -> [UInt8] in
            table.set(target, active: active, reason: reason, now: Self.nowMs(), by: nodeId)
            return table.encoded()
        }
        persist()
        onChange?(bytes)
    }

    /// Merges a peer's gossiped table; true when it changed anything here.
    @discardableResult
    package func merge(_ bytes: [UInt8], from peer: String) -> Bool {
        guard let other = OperatorDrains(decoding: bytes) else { return false }
        let (changed, newer) = lock.withLock { () -> (Bool, [String]) in
            let before = table.entries
            let changed = table.merge(other)
            return (changed, table.entries.filter { before[$0.key] != $0.value }.map { "\($0.key)=\($0.value.active ? "drained" : "undrained") by \($0.value.setBy)" })
        }
        guard changed else { return false }
        logger.notice("operator drains learned by gossip", metadata: ["from": "\(peer)", "changes": "\(newer.sorted())"])
        persist()
        return true
    }

    /// Forgets old undrains; true when the table changed.
    package func forgetOldUndrains() {
        let changed = lock.withLock { () -> Bool in
            let n = table.entries.count
            table.forgetUndrains(olderThan: Self.tombstoneMs, now: Self.nowMs())
            return table.entries.count != n
        }
        if changed { persist() }
    }

    // MARK: The state file

    private func load() {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let list = json["drains"] as? [[String: Any]] else {
            logger.warning("state file unreadable; starting without operator drains", metadata: ["file": "\(path)"])
            return
        }
        var entries: [String: OperatorDrains.Entry] = [:]
        for item in list {
            guard let target = item["target"] as? String, let active = item["active"] as? Bool,
                  let stamp = (item["stamp"] as? NSNumber)?.uint64Value else { continue }
            entries[target] = .init(active: active, reason: item["reason"] as? String ?? "", stamp: stamp,
                                    setBy: item["setBy"] as? String ?? "")
        }
        lock.withLock { table = OperatorDrains(entries: entries) }
        logger.notice("operator drains restored", metadata: ["file": "\(path)", "drains": "\(entries.filter { $0.value.active }.keys.sorted())"])
    }

    private func persist() {
        let list = lock.withLock { table.entries }.sorted { $0.key < $1.key }.map { target, e -> [String: Any] in
            ["target": target, "active": e.active, "reason": e.reason, "stamp": e.stamp, "setBy": e.setBy]
        }
        do {
            let data = try JSONSerialization.data(withJSONObject: ["drains": list], options: [.prettyPrinted, .sortedKeys])
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            logger.error("cannot write the state file; drains stay in memory", metadata: ["file": "\(path)", "error": "\(error)"])
        }
    }
}
