/// What the DNS node's admin API knows at one moment: served as `GET /status` (JSON) and rendered by `GET /`.
public struct StatusSnapshot: Codable, Sendable, Equatable {
    /// The configuration in force.
    public struct Config: Codable, Sendable, Equatable {
        public var version: String
        public var serial: UInt32
        public var loadedAt: String
        public var lastReload: LastReload?
        public init(version: String, serial: UInt32, loadedAt: String, lastReload: LastReload? = nil) {
            self.version = version
            self.serial = serial
            self.loadedAt = loadedAt
            self.lastReload = lastReload
        }
    }

    /// The outcome of the latest reload attempt.
    public struct LastReload: Codable, Sendable, Equatable {
        public var at: String
        public var ok: Bool
        public var error: String?
        public init(at: String, ok: Bool, error: String? = nil) {
            self.at = at
            self.ok = ok
            self.error = error
        }
    }

    /// Whether this DNS node can see the gossip cluster, in words for the page.
    public struct Cluster: Codable, Sendable, Equatable {
        /// True when the topology runs gossip for this node.
        public var gossip: Bool
        /// True when some other member was heard recently.
        public var visible: Bool
        /// A sentence for operators ("" when all is well).
        public var note: String
        public init(gossip: Bool, visible: Bool, note: String) {
            self.gossip = gossip
            self.visible = visible
            self.note = note
        }
    }

    /// A region of the topology and where it is.
    public struct Region: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        public var latitude: Double
        public var longitude: Double
        public init(id: String, name: String, latitude: Double, longitude: Double) {
            self.id = id
            self.name = name
            self.latitude = latitude
            self.longitude = longitude
        }
    }

    /// One edge as the DNS node sees it.
    public struct EdgeDetail: Codable, Sendable, Equatable {
        public var id: String
        public var region: String
        /// The health the answers use: "up", "suspect", "overloaded (shed N %)", "down".
        public var health: String
        /// The page's class: alive, suspect, overloaded, draining, degraded, dead or unknown.
        public var state: String
        /// Why the edge is not plainly alive (operator marks, gossip states); empty when it is.
        public var why: [String]
        /// Answers naming this edge since start, and per second over the last seconds.
        public var answers: Int
        public var answersPerSecond: Double
        /// Milliseconds since gossip last heard from the edge (nil: never, or no gossip).
        public var lastHeardMs: Int?
        /// What the edge last published (nil without gossip).
        public var requestsPerSecond: Int?
        public var capacity: Int?
        /// requestsPerSecond / capacity (nil when the capacity is unknown).
        public var load: Double?
        public var cacheHitRatio: Double?
        /// Share (0...1) of the edge's origin servers that are healthy.
        public var healthyOrigins: Double?
        public var connections: Int?

        public init(id: String, region: String, health: String, state: String, why: [String] = [], answers: Int = 0,
                    answersPerSecond: Double = 0, lastHeardMs: Int? = nil, requestsPerSecond: Int? = nil, capacity: Int? = nil,
                    load: Double? = nil, cacheHitRatio: Double? = nil, healthyOrigins: Double? = nil, connections: Int? = nil) {
            self.id = id
            self.region = region
            self.health = health
            self.state = state
            self.why = why
            self.answers = answers
            self.answersPerSecond = answersPerSecond
            self.lastHeardMs = lastHeardMs
            self.requestsPerSecond = requestsPerSecond
            self.capacity = capacity
            self.load = load
            self.cacheHitRatio = cacheHitRatio
            self.healthyOrigins = healthyOrigins
            self.connections = connections
        }
    }

    /// An operator drain through the admin API.
    public struct Drain: Codable, Sendable, Equatable {
        public var target: String
        public var reason: String
        public var since: String
        /// The DNS node the operator asked (every DNS node learns the drain by gossip).
        public var setBy: String
        public init(target: String, reason: String, since: String, setBy: String = "") {
            self.target = target
            self.reason = reason
            self.since = since
            self.setBy = setBy
        }
    }

    /// Answers from one client area (GeoIP country) to one edge since start.
    public struct Decision: Codable, Sendable, Equatable {
        public var country: String
        public var continent: String
        /// Where GeoIP placed the first client of this area (nil when unknown).
        public var latitude: Double?
        public var longitude: Double?
        public var edge: String
        public var region: String
        public var answers: Int
        public init(country: String, continent: String, latitude: Double?, longitude: Double?, edge: String, region: String,
                    answers: Int) {
            self.country = country
            self.continent = continent
            self.latitude = latitude
            self.longitude = longitude
            self.edge = edge
            self.region = region
            self.answers = answers
        }
    }

    /// Queries received.
    public struct Queries: Codable, Sendable, Equatable {
        public var udp: Int
        public var tcp: Int
        public init(udp: Int, tcp: Int) {
            self.udp = udp
            self.tcp = tcp
        }
    }

    /// An edge's published state, as gossip carries it.
    public struct MemberState: Codable, Sendable, Equatable {
        public var mode: String
        public var healthyOrigins: Double
        public var connections: Int
        public var requestsPerSecond: Int
        public var cacheHitRatio: Double
        public var capacity: Int
        public init(mode: String, healthyOrigins: Double, connections: Int, requestsPerSecond: Int, cacheHitRatio: Double,
                    capacity: Int) {
            self.mode = mode
            self.healthyOrigins = healthyOrigins
            self.connections = connections
            self.requestsPerSecond = requestsPerSecond
            self.cacheHitRatio = cacheHitRatio
            self.capacity = capacity
        }
    }

    /// One gossip member (DNS nodes and edges).
    public struct Member: Codable, Sendable, Equatable {
        public var id: String
        /// "dns" or "edge".
        public var role: String
        /// alive, suspect, dead or left.
        public var status: String
        public var incarnation: UInt64
        public var lastHeardMs: Int?
        public var state: MemberState?
        public init(id: String, role: String, status: String, incarnation: UInt64, lastHeardMs: Int? = nil,
                    state: MemberState? = nil) {
            self.id = id
            self.role = role
            self.status = status
            self.incarnation = incarnation
            self.lastHeardMs = lastHeardMs
            self.state = state
        }
    }

    /// The gossip member of this node.
    public struct Gossip: Codable, Sendable, Equatable {
        public var members: [Member]
        public var packetsIn: Int
        public var packetsOut: Int
        public var dropped: [String: Int]
        public init(members: [Member], packetsIn: Int, packetsOut: Int, dropped: [String: Int]) {
            self.members = members
            self.packetsIn = packetsIn
            self.packetsOut = packetsOut
            self.dropped = dropped
        }
    }

    public var node: String
    public var zone: String
    public var serial: UInt32
    /// When the snapshot was taken (RFC 3339).
    public var generatedAt: String
    public var config: Config
    public var cluster: Cluster
    public var regions: [Region]
    /// Edge id → the health the answers use (kept as a plain map for scripts).
    public var edges: [String: String]
    public var edgeDetails: [EdgeDetail]
    public var operatorDown: [String]
    public var drains: [Drain]
    public var decisions: [Decision]
    public var queries: Queries
    public var gossip: Gossip?

    public init(node: String, zone: String, serial: UInt32, generatedAt: String, config: Config, cluster: Cluster,
                regions: [Region], edges: [String: String], edgeDetails: [EdgeDetail], operatorDown: [String], drains: [Drain],
                decisions: [Decision], queries: Queries, gossip: Gossip?) {
        self.node = node
        self.zone = zone
        self.serial = serial
        self.generatedAt = generatedAt
        self.config = config
        self.cluster = cluster
        self.regions = regions
        self.edges = edges
        self.edgeDetails = edgeDetails
        self.operatorDown = operatorDown
        self.drains = drains
        self.decisions = decisions
        self.queries = queries
        self.gossip = gossip
    }
}

/// The "what would you answer" result: `GET /explain?client=IP[/LEN]` (JSON) and the page's box.
public struct ExplainResult: Codable, Sendable, Equatable {
    /// Where GeoIP puts the client.
    public struct Location: Codable, Sendable, Equatable {
        public var latitude: Double
        public var longitude: Double
        public var country: String?
        public var continent: String?
        public var city: String?
        public init(latitude: Double, longitude: Double, country: String?, continent: String?, city: String?) {
            self.latitude = latitude
            self.longitude = longitude
            self.country = country
            self.continent = continent
            self.city = city
        }
    }

    /// One ranked candidate.
    public struct Candidate: Codable, Sendable, Equatable {
        public var edge: String
        public var region: String
        public var distanceKm: Int
        public var health: String
        public var chosen: Bool
        public init(edge: String, region: String, distanceKm: Int, health: String, chosen: Bool) {
            self.edge = edge
            self.region = region
            self.distanceKm = distanceKm
            self.health = health
            self.chosen = chosen
        }
    }

    /// What was typed.
    public var query: String
    /// The address decided for (the subnet's first address), nil when the query did not parse.
    public var client: String?
    public var service: String?
    /// The GeoIP network's prefix length.
    public var geoPrefixLength: Int?
    public var location: Location?
    /// How the client was placed, in words.
    public var placement: String?
    public var candidates: [Candidate]
    /// The answer: edge ids with their addresses.
    public var answer: [String]
    public var ttlSeconds: UInt32?
    public var scopePrefixLength: Int?
    /// The same lines `CH TXT <service>` gives.
    public var trace: [String]
    /// Why there is no result (a bad query).
    public var error: String?

    public init(query: String, client: String? = nil, service: String? = nil, geoPrefixLength: Int? = nil,
                location: Location? = nil, placement: String? = nil, candidates: [Candidate] = [], answer: [String] = [],
                ttlSeconds: UInt32? = nil, scopePrefixLength: Int? = nil, trace: [String] = [], error: String? = nil) {
        self.query = query
        self.client = client
        self.service = service
        self.geoPrefixLength = geoPrefixLength
        self.location = location
        self.placement = placement
        self.candidates = candidates
        self.answer = answer
        self.ttlSeconds = ttlSeconds
        self.scopePrefixLength = scopePrefixLength
        self.trace = trace
        self.error = error
    }
}
