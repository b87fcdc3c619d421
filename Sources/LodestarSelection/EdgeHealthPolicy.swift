import LodestarGossip

/// The one home for what the DNS tier makes of an edge: from what gossip says of it (its membership status and the
/// state it publishes), the operator's marks (`--down`, the down file, drains) and the overload watermark, the
/// health the answers use — and the state and reasons `/status`, the status page and the traces show. Everything
/// that turns an edge's published state into "down / suspect / shed / up" asks this type.
public struct EdgeHealthPolicy: Sendable, Equatable {
    /// Above this share of its capacity an edge sheds queries (`gossip.overloadWatermark`; 0: never).
    public var overloadWatermark: Double

    public init(overloadWatermark: Double) {
        self.overloadWatermark = overloadWatermark
    }

    /// What is known of one edge.
    public struct Inputs: Sendable, Equatable {
        /// Its gossip membership status; nil when gossip has not heard of it (or is off).
        public var membership: SWIMMemberStatus?
        /// The state it published (nil: none yet, or unreadable).
        public var published: EdgeState?
        /// Why operators took it out (empty: they did not).
        public var operatorMarks: [String]
        /// Gossip runs on this node (an unheard edge is then "not heard from yet").
        public var gossipEnabled: Bool

        public init(membership: SWIMMemberStatus? = nil, published: EdgeState? = nil, operatorMarks: [String] = [],
                    gossipEnabled: Bool = true) {
            self.membership = membership
            self.published = published
            self.operatorMarks = operatorMarks
            self.gossipEnabled = gossipEnabled
        }
    }

    /// The verdict: the health answers use, the state shown, and why.
    public struct Verdict: Sendable, Equatable {
        public var health: EdgeHealth
        /// `alive`, `suspect`, `dead`, `draining`, `degraded`, `overloaded` or `unknown`.
        public var state: String
        public var reasons: [String]
    }

    /// The health from gossip alone (operator marks are applied on top by `LiveHealthView`); nil when gossip says
    /// nothing of the edge, which then gets the view's `unknown` health.
    public func gossipHealth(membership: SWIMMemberStatus, published: EdgeState?) -> EdgeHealth {
        switch membership {
        case .dead, .left: return .down
        case .suspect: return .suspect
        case .alive: break
        }
        guard let s = published else { return .healthy }  // alive, nothing published yet
        if s.mode == .draining || s.healthyOrigins == 0 { return .down }
        if overloadWatermark > 0, s.load > overloadWatermark { return .overloaded(shed: min(0.95, 1 - overloadWatermark / s.load)) }
        return .healthy
    }

    /// The whole verdict for one edge. `unknown`: the health of an edge gossip has not heard of.
    public func verdict(_ i: Inputs, unknown: EdgeHealth = .healthy) -> Verdict {
        var health = i.membership.map { gossipHealth(membership: $0, published: i.published) } ?? unknown
        var reasons = i.operatorMarks
        var state = "unknown"
        if let m = i.membership {
            if m != .alive { reasons.append("gossip: member is \(m)") }
            if let s = i.published {
                if s.mode == .draining { reasons.append("gossip: the edge reports it is draining") }
                if s.mode == .degraded || s.healthyOrigins == 0 { reasons.append("gossip: the edge reports no healthy origin") }
            }
            switch (m, i.published?.mode) {
            case (.dead, _), (.left, _): state = "dead"
            case (_, .draining?): state = "draining"
            case (_, .degraded?): state = "degraded"
            case (.suspect, _): state = "suspect"
            default: state = "alive"
            }
        } else if i.gossipEnabled {
            reasons.append("gossip: not heard from yet (answered while unknown)")
        }
        if !i.operatorMarks.isEmpty {
            health = .down
            if state != "dead" { state = "draining" }
        }
        if case .overloaded(let shed) = health {
            reasons.append("gossip: above the overload watermark, shedding \(Int(shed * 100)) %")
            if state == "alive" { state = "overloaded" }
        }
        if case .suspect = health { reasons.append("gossip: suspect (answers with a short TTL)") }
        return Verdict(health: health, state: state, reasons: reasons)
    }
}
