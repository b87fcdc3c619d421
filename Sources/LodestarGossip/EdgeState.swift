/// What an edge publishes about itself every gossip period (the member metadata of an edge): whether it takes new
/// users, how healthy its origins are, how loaded it is against its capacity, and how well its cache does.
public struct EdgeState: Sendable, Equatable {
    /// The edge's own view of whether it should get users.
    public enum Mode: UInt8, Sendable, CaseIterable, CustomStringConvertible {
        /// Taking users.
        case serving = 0
        /// Shutting down or in maintenance: finish what runs, send no new users.
        case draining = 1
        /// Some pool has no origin left: it answers 503 for those routes.
        case degraded = 2

        public var description: String {
            switch self {
            case .serving: "serving"
            case .draining: "draining"
            case .degraded: "degraded"
            }
        }
    }

    /// Serving, draining or degraded.
    public var mode: Mode
    /// Available origin servers over all servers of the edge's pools, in 1/10000 (10000 = all healthy).
    public var healthyOrigins: UInt16
    /// Open client connections.
    public var connections: UInt32
    /// Requests per second over the last period.
    public var requestsPerSecond: UInt32
    /// Cache hit ratio in 1/10000.
    public var cacheHitRatio: UInt16
    /// Requests per second the edge is sized for (from the topology); 0: unknown, never overloaded.
    public var capacity: UInt32

    /// Creates a record.
    public init(mode: Mode, healthyOrigins: UInt16 = 10_000, connections: UInt32 = 0, requestsPerSecond: UInt32 = 0,
                cacheHitRatio: UInt16 = 0, capacity: UInt32 = 0) {
        self.mode = mode
        self.healthyOrigins = min(healthyOrigins, 10_000)
        self.connections = connections
        self.requestsPerSecond = requestsPerSecond
        self.cacheHitRatio = min(cacheHitRatio, 10_000)
        self.capacity = capacity
    }

    /// Load over capacity (0 when the capacity is unknown).
    public var load: Double { capacity == 0 ? 0 : Double(requestsPerSecond) / Double(capacity) }

    /// The record's format version; a reader skips fields it does not know (later versions only append).
    public static let formatVersion: UInt8 = 1
    /// Bytes of a version-1 record.
    public static let encodedBytes = 18

    /// `version(1) mode(1) healthyOrigins(2) connections(4) requestsPerSecond(4) cacheHitRatio(2) capacity(4)`,
    /// big-endian.
    public func encoded() -> [UInt8] {
        var w = WireWriter()
        w.byte(Self.formatVersion)
        w.byte(mode.rawValue)
        w.u16(healthyOrigins)
        w.u32(connections)
        w.u32(requestsPerSecond)
        w.u16(cacheHitRatio)
        w.u32(capacity)
        return w.bytes
    }

    /// Reads a record; nil for an unknown mode, a version-0 record or one cut short. Longer records (a later
    /// version) are read for the fields this version knows.
    public init?(decoding bytes: [UInt8]) {
        var r = WireReader(bytes[...])
        guard let version = r.byte(), version >= 1, let modeByte = r.byte(), let mode = Mode(rawValue: modeByte),
              let origins = r.u16(), let connections = r.u32(), let rps = r.u32(), let hit = r.u16(), let capacity = r.u32()
        else { return nil }
        self.init(mode: mode, healthyOrigins: origins, connections: connections, requestsPerSecond: rps,
                  cacheHitRatio: hit, capacity: capacity)
    }
}

extension WireWriter {
    /// A big-endian 32-bit integer.
    mutating func u32(_ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }
}

extension WireReader {
    /// A big-endian 32-bit integer; nil when cut short.
    mutating func u32() -> UInt32? {
        guard let a = u16(), let b = u16() else { return nil }
        return UInt32(a) << 16 | UInt32(b)
    }
}
