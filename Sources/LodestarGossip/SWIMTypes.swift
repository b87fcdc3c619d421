/// A member's identity in the cluster (the authenticated sender id on the wire).
public struct SWIMNodeID: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// Stable unique name, e.g. the edge or DNS node id from `topology.json`.
    public var name: String

    /// Wraps a node name.
    public init(_ name: String) { self.name = name }
    /// Allows `"edge-1"` literals in tests and configuration.
    public init(stringLiteral value: String) { self.name = value }

    public var description: String { name }
    public static func < (lhs: SWIMNodeID, rhs: SWIMNodeID) -> Bool { lhs.name < rhs.name }
}

/// SWIM §4.2 member states plus `left` (a graceful leave, memberlist's dead-by-self).
public enum SWIMMemberStatus: UInt8, Sendable, Hashable, CustomStringConvertible {
    /// Answers probes (or nobody has proven otherwise).
    case alive
    /// SWIM §4.2: a probe failed; declared dead unless refuted before the suspicion timeout.
    case suspect
    /// SWIM §4.2: suspicion timed out; final for this incarnation.
    case dead
    /// The member announced its own departure; final for this incarnation.
    case left

    /// Alive and suspect members are probed and count towards n.
    public var isLive: Bool { self == .alive || self == .suspect }

    public var description: String {
        switch self {
        case .alive: "alive"
        case .suspect: "suspect"
        case .dead: "dead"
        case .left: "left"
        }
    }
}

/// Opaque, small per-member payload (the edge-state record later) with its own version counter.
public struct SWIMMetadata: Sendable, Hashable {
    /// Increases with every update by the owner; a higher version wins within one incarnation.
    public var version: UInt64
    /// Opaque bytes; the transport bounds their size.
    public var bytes: [UInt8]

    /// Creates a payload.
    public init(version: UInt64, bytes: [UInt8]) {
        self.version = version
        self.bytes = bytes
    }

    /// No payload yet.
    public static let empty = SWIMMetadata(version: 0, bytes: [])
}

/// One member as this node currently sees it.
public struct SWIMMember: Sendable, Hashable {
    /// Who.
    public var node: SWIMNodeID
    /// SWIM §4.2 state.
    public var status: SWIMMemberStatus
    /// SWIM §4.2 incarnation number: only the member itself increases it.
    public var incarnation: UInt64
    /// Latest payload heard.
    public var metadata: SWIMMetadata

    /// Creates a member view.
    public init(node: SWIMNodeID, status: SWIMMemberStatus, incarnation: UInt64, metadata: SWIMMetadata = .empty) {
        self.node = node
        self.status = status
        self.incarnation = incarnation
        self.metadata = metadata
    }
}

/// SWIM §4.1: one membership update, disseminated by piggybacking on protocol messages.
public struct SWIMGossip: Sendable, Hashable {
    /// The member the update is about.
    public var node: SWIMNodeID
    /// Asserted state.
    public var status: SWIMMemberStatus
    /// Incarnation the assertion applies to (SWIM §4.2).
    public var incarnation: UInt64
    /// Payload, carried by `alive` updates only.
    public var metadata: SWIMMetadata?
    /// Who made the assertion; for `suspect` it identifies an independent confirmation (Lifeguard §3.2).
    public var origin: SWIMNodeID

    /// Creates an update.
    public init(node: SWIMNodeID, status: SWIMMemberStatus, incarnation: UInt64, metadata: SWIMMetadata? = nil, origin: SWIMNodeID) {
        self.node = node
        self.status = status
        self.incarnation = incarnation
        self.metadata = metadata
        self.origin = origin
    }
}

/// A protocol message; the wire encoding (version byte, HMAC) belongs to the transport, not here.
public struct SWIMMessage: Sendable, Hashable {
    /// What the message asks or answers.
    public enum Kind: Sendable, Hashable {
        /// SWIM §3.1: direct probe; answer with `ack(sequence:)`.
        case ping(sequence: UInt64)
        /// SWIM §3.1 ping-req: probe `target` on the sender's behalf and relay its ack (or a nack).
        case pingRequest(sequence: UInt64, target: SWIMNodeID)
        /// SWIM §3.1: answer to a ping, or a relayed (indirect) ack to a ping-req.
        case ack(sequence: UInt64)
        /// Lifeguard §3.1: the relay heard nothing from the target; tells the prober its own path works.
        case nack(sequence: UInt64)
        /// memberlist push-pull: full membership state; answered with a reply unless `isReply`.
        case sync(state: [SWIMGossip], isReply: Bool)
    }

    /// The request or answer.
    public var kind: Kind
    /// SWIM §4.1: piggybacked updates, at most `SWIMSettings.maxGossipPerMessage` from this implementation.
    public var gossip: [SWIMGossip]

    /// Creates a message.
    public init(_ kind: Kind, gossip: [SWIMGossip] = []) {
        self.kind = kind
        self.gossip = gossip
    }
}

/// A locally observed change of a member's state (for the health view and logs).
public struct SWIMStatusChange: Sendable, Hashable {
    /// Who changed.
    public var node: SWIMNodeID
    /// State before; `nil` when the member was unknown until now.
    public var previous: SWIMMemberStatus?
    /// State now.
    public var current: SWIMMemberStatus
    /// Incarnation of the new state.
    public var incarnation: UInt64

    /// Creates a change record.
    public init(node: SWIMNodeID, previous: SWIMMemberStatus?, current: SWIMMemberStatus, incarnation: UInt64) {
        self.node = node
        self.previous = previous
        self.current = current
        self.incarnation = incarnation
    }
}

/// What the shell must do after feeding an input to `SWIMInstance` (swift-cluster-membership's directives).
public enum SWIMDirective: Sendable, Hashable {
    /// Send `message` to `to` (best effort, UDP-like).
    case send(SWIMMessage, to: SWIMNodeID)
    /// A member's state changed in this node's view.
    case statusChanged(SWIMStatusChange)
    /// A member's payload changed in this node's view.
    case metadataChanged(node: SWIMNodeID, metadata: SWIMMetadata)
}
