/// The operator drains every DNS node must agree on (an edge or a whole region kept out of answers), as a
/// last-writer-wins map that DNS nodes gossip to each other in their member metadata and merge: whichever node an
/// operator asks, every node ends with the same drains. An undrain is kept as a tombstone (inactive) for a while so
/// it reaches everyone rather than being revived by a node that missed it.
public struct OperatorDrains: Sendable, Equatable {
    /// One target's latest operator decision.
    public struct Entry: Sendable, Equatable {
        /// True while drained; false once undrained (a tombstone).
        public var active: Bool
        public var reason: String
        /// When the decision was made, milliseconds since 1970 (also the write's order).
        public var stamp: UInt64
        /// The DNS node the operator asked.
        public var setBy: String

        public init(active: Bool, reason: String, stamp: UInt64, setBy: String) {
            self.active = active
            self.reason = reason
            self.stamp = stamp
            self.setBy = setBy
        }

        /// Whether this decision is newer than `other` (a tie goes to the greater node id, so every node agrees).
        func supersedes(_ other: Entry) -> Bool {
            stamp != other.stamp ? stamp > other.stamp : (setBy, active ? 1 : 0, reason) > (other.setBy, other.active ? 1 : 0, other.reason)
        }
    }

    /// Target (`edge:ID` or `region:ID`) → its latest decision.
    public private(set) var entries: [String: Entry] = [:]

    public init(entries: [String: Entry] = [:]) { self.entries = entries }

    /// The drains in force.
    public var active: [String: Entry] { entries.filter { $0.value.active } }

    /// Records a decision made here; its stamp is at least one past the target's last, so it wins over what it replaces.
    public mutating func set(_ target: String, active: Bool, reason: String, now: UInt64, by node: String) {
        let stamp = max(now, (entries[target]?.stamp ?? 0) + 1)
        entries[target] = Entry(active: active, reason: String(decoding: reason.utf8.prefix(Self.maxReasonBytes), as: UTF8.self), stamp: stamp,
                                setBy: node)
    }

    /// Takes every decision of `other` newer than ours; true when anything changed.
    @discardableResult
    public mutating func merge(_ other: OperatorDrains) -> Bool {
        var changed = false
        for (target, entry) in other.entries {
            if let mine = entries[target], !entry.supersedes(mine) { continue }
            entries[target] = entry
            changed = true
        }
        return changed
    }

    /// Drops tombstones older than `age` milliseconds (they have had time to reach every node).
    public mutating func forgetUndrains(olderThan age: UInt64, now: UInt64) {
        entries = entries.filter { $0.value.active || now &- $0.value.stamp < age }
    }

    // MARK: Wire form (member metadata of a DNS node)

    /// The first byte of a DNS node's metadata (an edge's `EdgeState` starts with its version, 1).
    public static let tag: UInt8 = 0xD1
    public static let maxReasonBytes = 64
    /// Encoded size limit (the gossip metadata limit).
    public static let maxBytes = 1024

    /// `tag(1) count(1)` then per entry `flags(1) stamp(8) target setBy reason` (each `len(1) bytes`). Entries that do
    /// not fit in `maxBytes` are left out, tombstones first, then the oldest.
    public func encoded() -> [UInt8] {
        let ordered = entries.sorted { a, b in
            a.value.active != b.value.active ? a.value.active : a.value.stamp > b.value.stamp
        }
        var body = [UInt8]()
        var count = 0
        for (target, e) in ordered where count < 255 {
            var item: [UInt8] = [e.active ? 1 : 0]
            for shift in stride(from: 56, through: 0, by: -8) { item.append(UInt8(truncatingIfNeeded: e.stamp >> UInt64(shift))) }
            for text in [target, e.setBy, e.reason] {
                let bytes = Array(text.utf8.prefix(255))
                item.append(UInt8(bytes.count))
                item.append(contentsOf: bytes)
            }
            guard 2 + body.count + item.count <= Self.maxBytes else { break }
            body.append(contentsOf: item)
            count += 1
        }
        return [Self.tag, UInt8(count)] + body
    }

    /// Reads a table; nil when the bytes are not one (another member's metadata) or are cut short.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 2, bytes[0] == Self.tag else { return nil }
        var i = 2
        var entries: [String: Entry] = [:]
        func text() -> String? {
            guard i < bytes.count else { return nil }
            let n = Int(bytes[i])
            guard i + 1 + n <= bytes.count else { return nil }
            defer { i += 1 + n }
            return String(decoding: bytes[(i + 1)..<(i + 1 + n)], as: UTF8.self)
        }
        for _ in 0..<Int(bytes[1]) {
            guard i + 9 <= bytes.count else { return nil }
            let active = bytes[i] & 1 == 1
            var stamp: UInt64 = 0
            for k in 1...8 { stamp = stamp << 8 | UInt64(bytes[i + k]) }
            i += 9
            guard let target = text(), let setBy = text(), let reason = text() else { return nil }
            entries[target] = Entry(active: active, reason: reason, stamp: stamp, setBy: setBy)
        }
        self.entries = entries
    }
}
