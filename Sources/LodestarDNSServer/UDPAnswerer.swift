import CLodestarNet
import LodestarDNS
import LodestarSelection
import LodestarTopology
import Logging
import NIOCore
import Synchronization

/// One UDP worker's answering state, with no socket: the fast path (`Authority.fastRespond`), then the packet cache,
/// then the full path (`Authority.respond`); response rate limiting, metrics and the query log. A worker owns one
/// and calls it for every datagram, so nothing here takes a lock on the way to an answer.
struct UDPAnswerer {
    var reader: AuthorityReader
    let stats: DNSServerStats
    let limiter: SharedRateLimiter
    var cache: PacketCache
    var random = FastRandom()
    let metrics: DNSMetrics
    var counters = LocalDNSCounters()
    let logger: Logger
    var sampler: QueryLogSampler
    /// The fast path's health snapshot and the authority it was taken for, and a buffer for the engine's choice.
    private var fastAuthority: Authority?
    private var fastHealth: AnswerEngine.HealthSnapshot?
    private var picks: [UInt16] = []
    /// The packet cache's key is written here (no allocation per lookup unless the key is stored).
    private var keyBuffer: [UInt8] = []
    /// The authority whose engine the tally's decision keys refer to, fast answers since the last burst, last flush.
    private var tallyAuthority: Authority?
    private var burst = 0
    /// Queries answered, and datagrams received, in the current batch.
    private var answered = 0
    private var received = 0
    private var sampleCountdown = 0
    private var lastTallyFlush = NIODeadline.now()
    /// Heavy load: at least `heavyPerWindow` fast answers in the last 100 ms window.
    private var heavyLoad = false
    private var windowAnswers = 0
    private var windowStart = NIODeadline.now()
    static let heavyPerWindow = 500
    /// Under heavy load one fast answer in this many is located for the decision table's country breakdown.
    static let decisionSample = 64

    init(box: AuthorityBox, stats: DNSServerStats, limiter: SharedRateLimiter, cacheEntries: Int, metrics: DNSMetrics,
         logger: Logger, queryLogSample: Int) {
        reader = AuthorityReader(box: box)
        self.stats = stats
        self.limiter = limiter
        cache = PacketCache(capacity: cacheEntries)
        self.metrics = metrics
        self.logger = logger
        sampler = QueryLogSampler(sampleEvery: queryLogSample)
        picks.reserveCapacity(16)
    }

    /// What the first pass over a batch read of a datagram: nothing yet, a query the fast path will not answer, or one
    /// it will (its plan).
    enum Prepared {
        case unread
        case declined
        case fast(FastPlan)
    }

    /// What a whole batch is answered with, taken once at its start (`beginBatch`) and passed down borrowed: the
    /// authority (a reload takes effect from the next batch) and the fast path's health snapshot for it.
    struct Batch {
        let authority: Authority
        let health: AnswerEngine.HealthSnapshot?
    }

    /// Starts a batch: the current authority, and a health snapshot taken now if the authority or its health changed.
    mutating func beginBatch() -> Batch {
        let authority = reader.current()
        return Batch(authority: authority, health: healthSnapshot(for: authority))
    }

    /// The fast path's health snapshot for `authority`: the one kept, or a new one for a new authority or after a
    /// health change (which reads the authority's health view, a protocol call: once a batch, not once a query).
    private mutating func healthSnapshot(for authority: Authority) -> AnswerEngine.HealthSnapshot? {
        if fastAuthority !== authority || fastHealth.map({ $0.generation != authority.healthGeneration }) ?? true {
            fastAuthority = authority
            fastHealth = authority.fastHealthSnapshot()
        }
        return fastHealth
    }

    /// The first pass over a batch, datagram by datagram: reads the query for the fast path and prefetches the first
    /// word of the engine's table its answer reads, so that the batch's cache misses overlap instead of each stalling
    /// its own answer.
    func prepare(_ packet: UnsafeRawBufferPointer, from client: IPAddress, in batch: Batch) -> Prepared {
        guard let plan = batch.authority.planFast(packet, from: client) else { return .declined }
        if let word = batch.authority.indexWordHint(of: plan) { lodestar_prefetch(word) }
        return .fast(plan)
    }

    /// The second pass over a batch: with the first pass's index words now in cache, prefetches what each fast answer
    /// reads next (the first range entries its search probes, or its class's list), so that those misses overlap too.
    func prefetchAgain(_ prepared: Prepared, in batch: Batch) {
        guard case .fast(let plan) = prepared, let next = batch.authority.secondHint(of: plan) else { return }
        // Every cache line of the span (a search's first range entries: with many edges, a miss each otherwise).
        var offset = 0
        repeat {
            lodestar_prefetch(next.address + offset)
            offset += 64
        } while offset < next.bytes
    }

    /// The third pass over a batch: answers a datagram `prepare(_:from:in:)` read with the same batch.
    mutating func answer(_ packet: UnsafeRawBufferPointer, from client: IPAddress, start: NIODeadline,
                         into out: UnsafeMutableRawBufferPointer, prepared: Prepared, in batch: Batch) -> Int? {
        received += 1
        let plan: FastPlan?
        switch prepared {
        case .fast(let p): plan = p
        case .declined: plan = nil
        case .unread: plan = batch.authority.planFast(packet, from: client)
        }
        return answer(packet, from: client, start: start, into: out, authority: batch.authority, health: batch.health, plan: plan)
    }

    /// Answers one datagram from `client`, received in a batch that arrived at `start`, writing the response to `out`:
    /// its length, or nil to send nothing (a packet that is no query, a rate-limited drop, or a response larger than
    /// `out`). `out` may be the packet's own memory (the reply over its query): every path reads the query before
    /// writing. The time to the answer is recorded per batch (`endOfBatch`): every query of a batch waits for its send.
    /// (A batch of one: the socket loop answers its batches with `beginBatch` and the three passes.)
    mutating func answer(_ packet: UnsafeRawBufferPointer, from client: IPAddress, start: NIODeadline,
                         into out: UnsafeMutableRawBufferPointer) -> Int? {
        answer(packet, from: client, start: start, into: out, prepared: .unread, in: beginBatch())
    }

    /// Answers with `authority` (and its fast path with `health`), the query read as `plan` (nil: the fast path declines).
    private mutating func answer(_ packet: UnsafeRawBufferPointer, from client: IPAddress, start: NIODeadline,
                                 into out: UnsafeMutableRawBufferPointer, authority: Authority,
                                 health: AnswerEngine.HealthSnapshot?, plan: FastPlan?) -> Int? {
        switch answerFast(authority, packet, plan: plan, health: health, client: client, start: start, into: out) {
        case .sent(let length): return length
        case .withheld: return nil
        case .declined: break
        }
        var key: AnswerKey?
        if cache.capacity > 0 {
            // A reload or a health change since the last datagram empties the cache before it is consulted.
            cache.sync(with: authority)
            key = authority.answerKey(for: packet, from: client, transport: .udp, reusing: &keyBuffer)
        }
        var entry: PacketCache.Entry
        var id: UInt16?
        if let key, let hit = cache.lookup(key) {
            stats.cacheHits.add(1, ordering: .relaxed)
            entry = hit
            // The cached reply carries another query's ID; the new one is patched into the output.
            id = packet.count >= 2 ? UInt16(packet[0]) << 8 | UInt16(packet[1]) : nil
        } else {
            guard let response = authority.respond(to: Array(packet), from: client, transport: .udp, random: &random) else {
                stats.dropped.add(1, ordering: .relaxed)
                metrics.recordDropped()
                return nil
            }
            if let key { cache.store(key, response) }
            entry = PacketCache.Entry(response)
        }
        switch rateLimit(client, kind: entry.kind, qname: entry.qname, at: start) {
        case .send:
            stats.record(rcode: entry.rcode, truncated: entry.truncated)
            metrics.record(entry.facts, transport: .udp, local: &counters)
        case .drop:
            return nil
        case .slip:
            entry.bytes = Authority.slipResponse(for: entry.bytes)
        }
        answered += 1
        if sampler.take() {
            let elapsed = NIODeadline.now() - start
            logger.logQuery(client: "\(client)", transport: .udp, qname: entry.qname.description, facts: entry.facts,
                            micros: elapsed.nanoseconds / 1000, cached: id != nil)
        }
        guard entry.bytes.count <= out.count else { return nil }
        entry.bytes.withUnsafeBytes { out.copyMemory(from: $0) }
        if let id, entry.bytes.count >= 2 {
            out[0] = UInt8(id >> 8)
            out[1] = UInt8(id & 0xFF)
        }
        return entry.bytes.count
    }

    /// Response rate limiting for one answer, with drops and slips counted.
    private func rateLimit(_ client: IPAddress, kind: ResponseKind, qname: DNSName,
                           at start: NIODeadline) -> ResponseRateLimiter.Decision {
        let now = Double(start.uptimeNanoseconds) / 1e9
        let decision = limiter.decide(client: client, kind: kind, qname: qname, now: now)
        switch decision {
        case .send:
            break
        case .drop:
            stats.rateLimitedDrops.add(1, ordering: .relaxed)
            metrics.recordRateLimited(slip: false)
        case .slip:
            stats.rateLimitedSlips.add(1, ordering: .relaxed)
            metrics.recordRateLimited(slip: true)
        }
        return decision
    }

    /// A datagram that cannot be a query (truncated, or from an unusable address): dropped unanswered.
    func dropMalformed() {
        stats.udpQueries.add(1, ordering: .relaxed)
        stats.dropped.add(1, ordering: .relaxed)
        metrics.recordDropped()
    }

    private enum FastOutcome {
        case sent(Int)
        case withheld
        case declined
    }

    /// The fast path: a service's A/AAAA, or a static name's precompiled answer, written straight to `out`.
    private mutating func answerFast(_ authority: Authority, _ packet: UnsafeRawBufferPointer, plan: FastPlan?,
                                     health: AnswerEngine.HealthSnapshot?, client: IPAddress, start: NIODeadline,
                                     into out: UnsafeMutableRawBufferPointer) -> FastOutcome {
        // The snapshot is the authority's, current when the batch began (`beginBatch`).
        guard let plan, let health,
              let answer = authority.fastRespond(plan: plan, packet: packet, health: health, random: &random,
                                                 picks: &picks, into: out) else { return .declined }
        var length = answer.length
        // The name (a reference to count) is taken only when RRL applies to the client.
        if limiter.limits(client) {
            switch rateLimit(client, kind: .answer, qname: authority.fastName(of: answer), at: start) {
            case .send:
                break
            case .drop:
                return .withheld
            case .slip:
                let slip = Authority.slipResponse(for: Array(UnsafeRawBufferPointer(rebasing: out[0..<length])))
                slip.withUnsafeBytes { out.copyMemory(from: $0) }
                length = slip.count
            }
        }
        stats.record(rcode: 0, truncated: false)
        burst += 1
        answered += 1
        if answer.isStatic {
            metrics.recordStatic(qtype: answer.qtype, hadClientSubnet: answer.hadClientSubnet, local: &counters)
        } else {
            recordFast(answer, authority)
        }
        if sampler.take() {
            let elapsed = NIODeadline.now() - start
            let facts = ResponseFacts(rcode: 0, qtype: answer.qtype, truncated: false, hadClientSubnet: answer.hadClientSubnet,
                                      decision: authority.decision(of: answer))
            logger.logQuery(client: "\(client)", transport: .udp, qname: authority.fastName(of: answer).description,
                            facts: facts, micros: elapsed.nanoseconds / 1000, cached: false)
        }
        return .sent(length)
    }

    /// Counts a service's fast answer: its edge into the loop's tally, and its decision when sampled.
    private mutating func recordFast(_ answer: FastAnswer, _ authority: Authority) {
        if tallyAuthority !== authority {
            // The tally's keys name this authority's engine slots: count what the previous one left first.
            if let previous = tallyAuthority { metrics.flushTally(&counters, authority: previous) }
            tallyAuthority = authority
        }
        // The country breakdown needs a GeoIP lookup: every answer's under light load, one in `decisionSample` (standing
        // for them all) under heavy load; answers per edge are always exact.
        var weight = 0
        if !heavyLoad {
            weight = 1
        } else {
            sampleCountdown -= 1
            if sampleCountdown <= 0 {
                sampleCountdown = Self.decisionSample
                weight = Self.decisionSample
            }
        }
        metrics.recordFast(qtype: answer.qtype, hadClientSubnet: answer.hadClientSubnet, edge: authority.edgeKey(of: answer),
                           decision: weight > 0 ? authority.decisionKey(of: answer) : nil, weight: weight, local: &counters)
    }

    /// After a batch of datagrams, its time from arrival to sent (`elapsed`, nil when idle) is every answered query's
    /// time; and (also when idle, with `force`) the fast answers' tally reaches the counters and the decision table at
    /// once under light load (fewer than `heavyPerWindow` fast answers per 100 ms), else every 100 ms or 256 distinct
    /// decisions. `now`: the clock when the batch ended (read once by a caller that has it).
    mutating func endOfBatch(force: Bool, elapsed: TimeAmount? = nil, now: NIODeadline = .now()) {
        if let elapsed, answered > 0 { metrics.recordDuration(nanoseconds: elapsed.nanoseconds, transport: .udp, count: answered) }
        answered = 0
        if received > 0 { stats.udpQueries.add(received, ordering: .relaxed) }
        received = 0
        metrics.flushCounts(&counters)
        windowAnswers += burst
        burst = 0
        if now - windowStart >= .milliseconds(100) {
            heavyLoad = windowAnswers >= Self.heavyPerWindow
            windowAnswers = 0
            windowStart = now
        }
        guard let authority = tallyAuthority, !counters.tally.isEmpty else { return }
        guard force || !heavyLoad || counters.tally.count >= 256 || now - lastTallyFlush >= .milliseconds(100) else { return }
        lastTallyFlush = now
        metrics.flushTally(&counters, authority: authority)
    }
}
