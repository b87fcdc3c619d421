import LodestarDNS
import LodestarMetrics
import Logging
import NIOCore
import Prometheus
import Synchronization

/// The DNS server's Prometheus families (on the process's `MetricsHub`) and the decision table `/status` shows.
public final class DNSMetrics: Sendable {
    /// Series key of `lodestar_dns_queries_total`.
    struct QueryKey: Hashable, Sendable {
        var transport: DNSTransport
        var qtype: UInt16
        var rcode: UInt16
    }

    /// Series key of `lodestar_dns_answers_total`.
    struct EdgeKey: Hashable, Sendable {
        var region: String
        var edge: String
    }

    let queries: CounterFamily<QueryKey>
    let answers: CounterFamily<EdgeKey>
    let clientSubnet: [Counter]
    let truncated: Counter
    let rateLimited: [Counter]
    let malformed: [Counter]
    let duration: [BatchDurationHistogramFamily.Series]
    /// Answers by (client country/continent, edge) since start: the "top decisions" of `/status`.
    public let decisions = DecisionTable()

    /// Registers the families on `hub` and a collector that mirrors `stats`' gauges.
    public init(hub: MetricsHub, stats: DNSServerStats) {
        queries = CounterFamily(hub, name: "lodestar_dns_queries_total",
                                help: "Queries answered, by transport, question type and response code.") { k in
            [("transport", k.transport.label), ("qtype", DNSMetrics.typeName(k.qtype)), ("rcode", DNSMetrics.rcodeName(k.rcode))]
        }
        answers = CounterFamily(hub, name: "lodestar_dns_answers_total",
                                help: "GSLB address answers by the region and edge chosen.") { k in
            [("region", k.region), ("edge", k.edge)]
        }
        clientSubnet = ["present", "absent"].map {
            hub.counter("lodestar_dns_client_subnet_total", [("ecs", $0)],
                          help: "Queries with and without an EDNS Client Subnet option.")
        }
        truncated = hub.counter("lodestar_dns_truncated_total", [("transport", "udp")],
                                help: "UDP answers cut to fit the client's payload size (TC=1).")
        rateLimited = ["drop", "slip"].map {
            hub.counter("lodestar_dns_rrl_total", [("action", $0)],
                        help: "Responses withheld by response rate limiting: dropped, or slipped as TC=1.")
        }
        malformed = ["dropped", "formerr"].map {
            hub.counter("lodestar_dns_malformed_total", [("result", $0)],
                        help: "Malformed packets: dropped unanswered, or answered FORMERR.")
        }
        let buckets: [Duration] = [.microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100),
                                   .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(5),
                                   .milliseconds(25), .milliseconds(100)]
        let durations = hub.batchDurationHistogram("lodestar_dns_response_duration_seconds", buckets: buckets,
                                                   help: "Time from a query's arrival to its answer being written.")
        duration = ["udp", "tcp"].map { durations.makeSeries([("transport", $0)]) }
        let cacheHits = MirroredCounter(hub, name: "lodestar_dns_packet_cache_hits_total", labels: [("transport", "udp")],
                                        help: "UDP answers served from the packet cache.")
        let tcpOpen = hub.gauge("lodestar_dns_tcp_connections", [("state", "open")], help: "Open TCP connections.")
        let tcpRejected = MirroredCounter(hub, name: "lodestar_dns_tcp_rejected_total", labels: [("reason", "limit")],
                                          help: "TCP connections closed to make room for new ones (the longest idle first).")
        hub.addCollector {
            cacheHits.sync(to: stats.cacheHits.load(ordering: .relaxed))
            tcpRejected.sync(to: stats.tcpRejected.load(ordering: .relaxed))
            tcpOpen.set(to: Double(stats.tcpConnections.load(ordering: .relaxed)))
        }
    }

    /// Counts one sent response (called on the event loop that sent it, through its `LocalDNSCounters`).
    /// UDP's query count waits for the batch's `flushCounts`; TCP's is counted at once.
    func record(_ r: ResponseFacts, transport: DNSTransport, local: inout LocalDNSCounters) {
        if transport == .udp {
            local.countPending(r.qtype, r.rcode, hadClientSubnet: r.hadClientSubnet, self)
        } else {
            local.queries(r.qtype, r.rcode, transport, self).increment()
            if r.qtype != 0 { clientSubnet[r.hadClientSubnet ? 0 : 1].increment() }
        }
        if r.rcode == 1 { malformed[1].increment() }
        if r.truncated { truncated.increment() }
        if let d = r.decision {
            local.answer(d, self).increment()
            decisions.record(d)
        }
    }

    /// Counts a fast answer (`Authority.fastRespond`): the query counters now; its edge (`Authority.edgeKey`) into the
    /// loop's tally, and, when the answer was sampled for the country breakdown, its decision (`Authority.decisionKey`)
    /// with the weight it stands for.
    func recordFast(qtype: UInt16, hadClientSubnet: Bool, edge: UInt64, decision: UInt64?, weight: Int,
                    local: inout LocalDNSCounters) {
        local.countPending(qtype, 0, hadClientSubnet: hadClientSubnet, self)
        local.tally.add(edge)
        if let decision { local.sampledDecisions.add(decision, weight) }
    }

    /// Counts a static name's fast answer (`FastStatic`): the query counters alone (no edge, no decision).
    func recordStatic(qtype: UInt16, hadClientSubnet: Bool, local: inout LocalDNSCounters) {
        local.countPending(qtype, 0, hadClientSubnet: hadClientSubnet, self)
    }

    /// Adds a worker's pending query counts to the shared counters (after each batch).
    func flushCounts(_ local: inout LocalDNSCounters) {
        local.flushPendingQueries()
        for i in 0..<2 where local.clientSubnetPending[i] > 0 {
            clientSubnet[i].increment(by: Int64(local.clientSubnetPending[i]))
            local.clientSubnetPending[i] = 0
        }
    }

    /// Moves a loop's tally of fast answers into the answer counters and the decision table.
    func flushTally(_ local: inout LocalDNSCounters, authority: Authority) {
        guard !local.tally.isEmpty || !local.sampledDecisions.isEmpty else { return }
        var edges: [(String, Int)] = []
        var answers: [(AnswerDecision, Int)] = []
        local.tally.forEach { key, n in
            guard let d = authority.decision(ofKey: key) else { return }
            answers.append((d, n))
            edges.append((d.edge, n))
        }
        for (d, n) in answers { local.answer(d, self).increment(by: Int64(n)) }
        var sampled: [(AnswerDecision, Int)] = []
        local.sampledDecisions.forEach { key, n in
            if let d = authority.decision(ofKey: key) { sampled.append((d, n)) }
        }
        local.tally.removeAll()
        local.sampledDecisions.removeAll()
        decisions.record(decisions: sampled, edgeTotals: edges)
    }

    /// A datagram or frame dropped unanswered.
    func recordDropped() { malformed[0].increment() }

    /// A response withheld by RRL.
    func recordRateLimited(slip: Bool) { rateLimited[slip ? 1 : 0].increment() }

    /// Records how long one query took (`count` queries that took as long).
    func recordDuration(_ d: Duration, transport: DNSTransport, count: Int = 1) {
        duration[transport == .udp ? 0 : 1].record(d, count: count)
    }

    /// `recordDuration` in nanoseconds (the UDP loops' batches: no `Duration` arithmetic).
    func recordDuration(nanoseconds: Int64, transport: DNSTransport, count: Int = 1) {
        duration[transport == .udp ? 0 : 1].record(nanoseconds: nanoseconds, count: count)
    }

    /// A question type's mnemonic (a fixed set, so the label's cardinality is bounded).
    static func typeName(_ t: UInt16) -> String {
        switch t {
        case 0: "none"
        case 1: "A"
        case 2: "NS"
        case 5: "CNAME"
        case 6: "SOA"
        case 12: "PTR"
        case 15: "MX"
        case 16: "TXT"
        case 28: "AAAA"
        case 33: "SRV"
        case 35: "NAPTR"
        case 43: "DS"
        case 48: "DNSKEY"
        case 64: "SVCB"
        case 65: "HTTPS"
        case 252: "AXFR"
        case 251: "IXFR"
        case 255: "ANY"
        case 257: "CAA"
        default: "other"
        }
    }

    /// A response code's mnemonic.
    static func rcodeName(_ r: UInt16) -> String {
        switch r {
        case 0: "NOERROR"
        case 1: "FORMERR"
        case 2: "SERVFAIL"
        case 3: "NXDOMAIN"
        case 4: "NOTIMP"
        case 5: "REFUSED"
        case 16: "BADVERS"
        default: "other"
        }
    }
}

/// What metrics and the query log need of a response (from the engine or the packet cache).
struct ResponseFacts {
    var rcode: UInt16
    var qtype: UInt16
    var truncated: Bool
    var hadClientSubnet: Bool
    var decision: AnswerDecision?
}

/// One event loop's cache of counter handles, so the hot path takes no lock after a series' first use.
struct LocalDNSCounters {
    private var queryCounters: [DNSMetrics.QueryKey: Counter] = [:]
    /// Query series in use, direct-mapped by (type, rcode, transport), each with the queries counted in it since the
    /// last flush: traffic mixing a few types and rcodes finds its series with no hashing and takes no lock per query.
    private struct Series {
        var key: DNSMetrics.QueryKey
        var counter: Counter?
        var pending: Int
    }
    private var series = [Series](repeating: Series(key: DNSMetrics.QueryKey(transport: .udp, qtype: 0, rcode: 0),
                                                     counter: nil, pending: 0), count: 16)
    private var answerCounters: [DNSMetrics.EdgeKey: Counter] = [:]
    /// Fast answers not yet counted, by edge (`Authority.edgeKey`), and the sampled ones by decision
    /// (`Authority.decisionKey`, weighted), both of one authority.
    var tally = CountTable()
    var sampledDecisions = CountTable()
    /// Fast answers not yet added to `lodestar_dns_client_subnet_total` (present, absent), and to the last query series.
    var clientSubnetPending = [0, 0]

    /// Counts a UDP response — its query series, and ECS present or absent for a question (type not 0) — held back
    /// until the batch's `flushCounts`.
    mutating func countPending(_ qtype: UInt16, _ rcode: UInt16, hadClientSubnet: Bool, _ m: DNSMetrics) {
        countQuery(qtype, rcode, .udp, m)
        if qtype != 0 { clientSubnetPending[hadClientSubnet ? 0 : 1] += 1 }
    }

    /// Counts a query in its series, held back until `flushPendingQueries` (after each batch).
    private mutating func countQuery(_ qtype: UInt16, _ rcode: UInt16, _ transport: DNSTransport, _ m: DNSMetrics) {
        let raw = DNSMetrics.QueryKey(transport: transport, qtype: qtype, rcode: rcode)
        let i = (Int(qtype) &* 7 &+ Int(rcode) &* 3 &+ (transport == .udp ? 0 : 5)) & (series.count - 1)
        if series[i].counter != nil, series[i].key == raw {
            series[i].pending += 1
            return
        }
        flush(i)  // the series this one replaces
        series[i] = Series(key: raw, counter: queries(qtype, rcode, transport, m), pending: 1)
    }

    /// Adds what `countQuery` held back to the shared counters.
    mutating func flushPendingQueries() {
        for i in series.indices where series[i].pending > 0 { flush(i) }
    }

    private mutating func flush(_ i: Int) {
        guard series[i].pending > 0, let counter = series[i].counter else { return }
        counter.increment(by: Int64(series[i].pending))
        series[i].pending = 0
    }

    /// The shared counter of a query series (created on first use).
    mutating func queries(_ qtype: UInt16, _ rcode: UInt16, _ transport: DNSTransport, _ m: DNSMetrics) -> Counter {
        let key = DNSMetrics.QueryKey(transport: transport, qtype: Self.qtypeBucket(qtype), rcode: rcode)
        if let c = queryCounters[key] { return c }
        let c = m.queries.counter(key)
        queryCounters[key] = c
        return c
    }

    mutating func answer(_ d: AnswerDecision, _ m: DNSMetrics) -> Counter {
        let key = DNSMetrics.EdgeKey(region: d.region, edge: d.edge)
        if let c = answerCounters[key] { return c }
        let c = m.answers.counter(key)
        answerCounters[key] = c
        return c
    }

    /// Folds unnamed types into one key (their label is "other" anyway).
    private static func qtypeBucket(_ t: UInt16) -> UInt16 { DNSMetrics.typeName(t) == "other" ? 65535 : t }
}

/// Answers by (client country, continent, edge), for `/status` and the status page: the recent ones (the current
/// and the previous window, rotated by `rotate()` every few minutes) keep the location of the first client counted
/// under each key (where the page draws the area); per-edge totals since start feed the answer rates.
public final class DecisionTable: Sendable {
    private struct State {
        var current: [AnswerDecision: Int] = [:]
        var previous: [AnswerDecision: Int] = [:]
        var totals: [String: Int] = [:]
    }

    private let state = Mutex(State())
    /// Bound on distinct keys per window (countries × edges stays far below it; past it new keys are not added).
    static let maxKeys = 4096

    /// Counts one answer.
    func record(_ d: AnswerDecision) { record(decisions: [(d, 1)], edgeTotals: [(d.edge, 1)]) }

    /// Counts a batch (an event loop's tally) under one lock: answers per edge, and decisions by country and edge
    /// (under heavy load a sample, each standing for the answers it was drawn from).
    func record(decisions batch: [(AnswerDecision, Int)], edgeTotals: [(String, Int)]) {
        state.withLock { s in
            for (edge, n) in edgeTotals { s.totals[edge, default: 0] += n }
            for (d, n) in batch {
                if let m = s.current[d] {
                    s.current[d] = m + n
                } else if s.current.count < Self.maxKeys {
                    s.current[d] = n
                }
            }
        }
    }

    /// Starts a new window: the one that ends becomes the previous one, the one before is forgotten.
    public func rotate() {
        state.withLock { s in
            s.previous = s.current
            s.current = [:]
        }
    }

    /// The `limit` most frequent recent decisions (current and previous window), most frequent first.
    public func top(_ limit: Int) -> [(AnswerDecision, Int)] {
        let (current, previous) = state.withLock { ($0.current, $0.previous) }
        var merged = previous
        for (k, v) in current { merged[k, default: 0] += v }
        return merged.sorted { $0.value != $1.value ? $0.value > $1.value : ($0.key.edge, $0.key.country) < ($1.key.edge, $1.key.country) }
            .prefix(limit).map { ($0.key, $0.value) }
    }

    /// Answers per edge since start.
    public func byEdge() -> [String: Int] {
        state.withLock { $0.totals }
    }
}

/// Logs one query in `sampleEvery` (0: off), from one event loop.
struct QueryLogSampler {
    let sampleEvery: Int
    private var countdown: Int

    init(sampleEvery: Int) {
        self.sampleEvery = max(0, sampleEvery)
        countdown = max(0, sampleEvery)
    }

    /// True for the queries to log.
    mutating func take() -> Bool {
        guard sampleEvery > 0 else { return false }
        countdown -= 1
        if countdown > 0 { return false }
        countdown = sampleEvery
        return true
    }
}

extension DNSTransport {
    /// The metric label.
    var label: String { self == .udp ? "udp" : "tcp" }
}

extension Logger {
    /// One query-log line.
    func logQuery(client: String, transport: DNSTransport, qname: String, facts r: ResponseFacts, micros: Int64, cached: Bool) {
        var md: Logger.Metadata = [
            "log": "query", "client": "\(client)", "transport": "\(transport.label)", "qname": "\(qname)",
            "qtype": "\(DNSMetrics.typeName(r.qtype))", "rcode": "\(DNSMetrics.rcodeName(r.rcode))",
            "ecs": "\(r.hadClientSubnet)", "us": "\(micros)", "cached": "\(cached)",
        ]
        if let d = r.decision {
            md["edge"] = "\(d.edge)"
            md["country"] = "\(d.country)"
        }
        info("query", metadata: md)
    }
}
