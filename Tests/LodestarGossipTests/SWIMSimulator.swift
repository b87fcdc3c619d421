import LodestarGossip
import LodestarTopology

/// The seeded generator of every simulation run (SplitMix64), so runs are reproducible.
typealias SeededRNG = FastRandom

/// Binary min-heap of simulation events ordered by (time, insertion order): deterministic and O(log n).
struct EventHeap {
    enum Kind {
        case deliver(to: Int, from: Int, SWIMMessage)
        case tick(Int)
    }
    struct Event {
        var time: Int64
        var order: UInt64
        var kind: Kind
        func precedes(_ other: Event) -> Bool { time != other.time ? time < other.time : order < other.order }
    }

    private var items: [Event] = []
    private var counter: UInt64 = 0
    var isEmpty: Bool { items.isEmpty }
    var nextTime: Int64? { items.first?.time }

    mutating func push(time: Int64, _ kind: Kind) {
        counter += 1
        items.append(Event(time: time, order: counter, kind: kind))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].precedes(items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Event? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var best = parent
            if left < items.count && items[left].precedes(items[best]) { best = left }
            if right < items.count && items[right].precedes(items[best]) { best = right }
            if best == parent { break }
            items.swapAt(parent, best)
            parent = best
        }
        return top
    }
}

/// Deterministic cluster simulation: N `SWIMInstance`s, a virtual clock, a lossy network with latency, crashes.
final class SWIMSimulation {
    struct Configuration {
        var nodeCount = 50
        var settings = SWIMSettings()
        /// Independent per-message drop probability.
        var lossRate = 0.0
        var minLatencyNanos: Int64 = 1_000_000
        var maxLatencyNanos: Int64 = 20_000_000
        var seed: UInt64 = 1
        /// Seeds given to node i at start (default: every node, as from a static topology).
        var seedsFor: ((Int, [SWIMNodeID]) -> [SWIMNodeID])? = nil
    }

    /// One observed status change: `observer` saw `change` at `time` (ns).
    struct Observation {
        var observer: Int
        var change: SWIMStatusChange
        var time: Int64
    }

    let configuration: Configuration
    let ids: [SWIMNodeID]
    private(set) var nodes: [SWIMInstance]
    private let indexOf: [SWIMNodeID: Int]
    private(set) var crashed: [Bool]
    private(set) var now: Int64 = 0
    private(set) var messagesSent = 0
    /// Bytes the messages would take on the wire (GossipWire.encodedSize), counted while `countBytes` is on.
    private(set) var bytesSent = 0
    var countBytes = false
    /// Called when a node reports a member's new payload: observer, member, payload version, time (ns).
    var onMetadata: ((_ observer: Int, _ node: SWIMNodeID, _ version: UInt64, _ time: Int64) -> Void)?
    private(set) var messagesDropped = 0
    private var rng: SeededRNG
    private var events = EventHeap()
    private var scheduledTick: [Int64]
    /// Called for every status change any node reports.
    var onObservation: ((Observation) -> Void)?
    /// Debug hook: every delivered message.
    var onDeliver: ((_ from: Int, _ to: Int, _ message: SWIMMessage, _ time: Int64) -> Void)?
    /// Extra drop rule (e.g. a broken link): return true to drop.
    var dropRule: ((_ from: Int, _ to: Int, _ message: SWIMMessage) -> Bool)?

    init(_ configuration: Configuration) {
        self.configuration = configuration
        rng = SeededRNG(seed: configuration.seed)
        ids = (0..<configuration.nodeCount).map { SWIMNodeID("node-\($0)") }
        var index: [SWIMNodeID: Int] = [:]
        for (i, id) in ids.enumerated() { index[id] = i }
        indexOf = index
        crashed = Array(repeating: false, count: configuration.nodeCount)
        scheduledTick = Array(repeating: Int64.max, count: configuration.nodeCount)
        nodes = []
        nodes.reserveCapacity(configuration.nodeCount)
        let period = configuration.settings.probeInterval
        for i in 0..<configuration.nodeCount {
            // Stagger the first probe inside one period, as independent processes would.
            let offset = Int64.random(in: 0..<period.nanos, using: &rng)
            nodes.append(SWIMInstance(settings: configuration.settings, myself: ids[i],
                                      seeds: configuration.seedsFor?(i, ids) ?? ids, now: .nanoseconds(offset)))
            reschedule(i)
        }
    }

    func index(of id: SWIMNodeID) -> Int? { indexOf[id] }

    /// The node stops sending and receiving (kill -9).
    func crash(_ i: Int) { crashed[i] = true }

    /// Feeds `node` an input now and executes its directives.
    func perform(_ i: Int, _ input: (inout SWIMInstance, Duration, inout SeededRNG) -> [SWIMDirective]) {
        let directives = input(&nodes[i], .nanoseconds(now), &rng)
        execute(directives, from: i)
        reschedule(i)
    }

    /// Runs events until virtual time `end` (ns) or until `stop` returns true after an event.
    func run(until end: Int64, stop: (() -> Bool)? = nil) {
        while let next = events.nextTime, next <= end {
            guard let event = events.pop() else { break }
            now = event.time
            switch event.kind {
            case .tick(let i):
                guard scheduledTick[i] == event.time else { continue }
                scheduledTick[i] = Int64.max
                guard !crashed[i] else { continue }
                let directives = nodes[i].onTick(now: .nanoseconds(now), rng: &rng)
                execute(directives, from: i)
                reschedule(i)
            case .deliver(let to, let from, let message):
                guard !crashed[to] else { continue }
                onDeliver?(from, to, message, now)
                let directives = nodes[to].onMessage(message, from: ids[from], now: .nanoseconds(now), rng: &rng)
                execute(directives, from: to)
                reschedule(to)
            }
            if let stop, stop() { return }
        }
        now = Swift.max(now, end)
    }

    private func execute(_ directives: [SWIMDirective], from i: Int) {
        for directive in directives {
            switch directive {
            case .send(let message, let to):
                guard !crashed[i], let j = indexOf[to] else { continue }
                messagesSent += 1
                if countBytes { bytesSent += GossipWire.encodedSize(message, from: ids[i]) }
                if configuration.lossRate > 0 && Double.random(in: 0..<1, using: &rng) < configuration.lossRate {
                    messagesDropped += 1
                    continue
                }
                if let dropRule, dropRule(i, j, message) {
                    messagesDropped += 1
                    continue
                }
                let latency = Int64.random(in: configuration.minLatencyNanos...configuration.maxLatencyNanos, using: &rng)
                events.push(time: now + latency, .deliver(to: j, from: i, message))
            case .statusChanged(let change):
                onObservation?(Observation(observer: i, change: change, time: now))
            case .metadataChanged(let node, let metadata):
                onMetadata?(i, node, metadata.version, now)
            }
        }
    }

    private func reschedule(_ i: Int) {
        guard let deadline = nodes[i].nextTickDeadline?.nanos else { return }
        let at = Swift.max(deadline, now)
        if at < scheduledTick[i] {
            scheduledTick[i] = at
            events.push(time: at, .tick(i))
        }
    }
}

extension Duration {
    var nanos: Int64 {
        let c = components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
    var seconds: Double { Double(nanos) / 1e9 }
}

extension Int64 {
    static func seconds(_ s: Double) -> Int64 { Int64(s * 1e9) }
}

extension SWIMSimulation {
    /// Figures of one crash experiment.
    struct CrashRun {
        /// Seconds from the crash to the first live member marking the victim suspect.
        var firstSuspect: Double?
        /// Seconds from the crash until the last live member marked the victim dead (nil: not within 60 s).
        var allDead: Double?
        /// Distinct (member, incarnation) suspicions of live members, and how many member views showed them.
        var falseSuspicionIncidents = 0
        var falseSuspicionViews = 0
        /// Distinct (member, incarnation) deaths of live members, and how many member views showed them.
        var falseDeathIncidents = 0
        var falseDeathViews = 0
        /// Messages sent per member per second during the 10 s warm-up (all alive).
        var messagesPerMemberPerSecond = 0.0
        /// Bytes sent per member per second during the warm-up.
        var bytesPerMemberPerSecond = 0.0
        /// Seconds from each published payload report until all three DNS nodes (members 0, 1 and 2) have it or a newer
        /// one; nil entries had not arrived when the run ended.
        var propagation: [Double?] = []
        /// Mean local health multiplier of the members at the crash (Lifeguard §3.1; 1 = healthy).
        var meanHealthMultiplier = 0.0
    }

    /// One crash experiment: 10 s warm-up, crash one member, run until every live member marks it dead (at most
    /// `window` seconds, 60 by default).
    /// With `reports`, members publish load reports during the warm-up as edges do (see below).
    static func runCrash(nodeCount: Int = 50, loss: Double, seed: UInt64, settings: SWIMSettings = SWIMSettings(),
                         reports: Bool = false, window: Int = 60,
                         latencyMillis: ClosedRange<Int64>? = nil) -> CrashRun {
        var configuration = SWIMSimulation.Configuration()
        if let latencyMillis {
            configuration.minLatencyNanos = latencyMillis.lowerBound * 1_000_000
            configuration.maxLatencyNanos = latencyMillis.upperBound * 1_000_000
        }
        configuration.settings = settings
        configuration.nodeCount = nodeCount
        configuration.lossRate = loss
        configuration.seed = seed
        let sim = SWIMSimulation(configuration)
        let victim = Int(seed % UInt64(nodeCount))
        let victimID = sim.ids[victim]
        let crashAt = Int64.seconds(10)
        var run = CrashRun()
        var deadSeenBy = Set<Int>()
        var lastDead: Int64 = 0
        var crashedYet = false
        var suspicionIncidents = Set<SWIMGossipKey>()
        var deathIncidents = Set<SWIMGossipKey>()
        sim.onObservation = { observation in
            let change = observation.change
            let isCrashedSubject = crashedYet && change.node == victimID
            switch change.current {
            case .suspect:
                if isCrashedSubject {
                    if run.firstSuspect == nil { run.firstSuspect = Double(observation.time - crashAt) / 1e9 }
                } else {
                    run.falseSuspicionViews += 1
                    suspicionIncidents.insert(SWIMGossipKey(node: change.node, incarnation: change.incarnation))
                }
            case .dead:
                if isCrashedSubject {
                    deadSeenBy.insert(observation.observer)
                    lastDead = observation.time
                } else {
                    run.falseDeathViews += 1
                    deathIncidents.insert(SWIMGossipKey(node: change.node, incarnation: change.incarnation))
                }
            case .alive, .left:
                break
            }
        }
        // Payload reports as `lodestar edge` sends them: from 4 s every member but the DNS nodes (members 0, 1, 2)
        // publishes a new report once a second (staggered), gossiped and sent straight to the DNS nodes. Each report
        // is timed until all three DNS nodes hold it (or a newer one from the same member).
        let dnsNodes = Array(0..<Swift.min(3, nodeCount))
        let dnsIDs = dnsNodes.map { sim.ids[$0] }
        var pending: [SWIMNodeID: [(version: UInt64, at: Int64, seen: Set<Int>)]] = [:]
        var samples: [Double] = []
        sim.onMetadata = { observer, node, version, time in
            guard dnsNodes.contains(observer), var list = pending[node] else { return }
            for k in list.indices where version >= list[k].version { list[k].seen.insert(observer) }
            for entry in list where entry.seen.count == dnsNodes.count { samples.append(Double(time - entry.at) / 1e9) }
            list.removeAll { $0.seen.count == dnsNodes.count }
            pending[node] = list.isEmpty ? nil : list
        }
        sim.run(until: .seconds(4))
        sim.countBytes = true
        let bytesFrom = sim.bytesSent
        var t = Int64.seconds(4)
        var slot = 0
        while reports && t < crashAt - .seconds(1) {
            t += 100_000_000
            sim.run(until: t)
            for i in stride(from: slot, to: nodeCount, by: 10) where !dnsNodes.contains(i) {
                sim.perform(i) { node, _, _ in
                    node.updateMetadata([UInt8(truncatingIfNeeded: t / 100_000_000)])
                    return node.sendPayload(to: dnsIDs)
                }
                // Timed up to 3 s before the crash: each timed report is followed by two more, as in a running edge.
                if t <= crashAt - .seconds(3) {
                    pending[sim.ids[i], default: []].append((sim.nodes[i].myMetadata.version, t, []))
                }
            }
            slot = (slot + 1) % 10
        }
        sim.run(until: crashAt)
        sim.countBytes = false
        run.bytesPerMemberPerSecond = Double(sim.bytesSent - bytesFrom) / Double(nodeCount) / 6
        run.messagesPerMemberPerSecond = Double(sim.messagesSent) / Double(nodeCount) / 10
        run.meanHealthMultiplier = Double(sim.nodes.map(\.localHealthMultiplier).reduce(0, +)) / Double(nodeCount)
        crashedYet = true
        sim.crash(victim)
        sim.run(until: crashAt + .seconds(Double(window))) { deadSeenBy.count == nodeCount - 1 }
        if deadSeenBy.count == nodeCount - 1 { run.allDead = Double(lastDead - crashAt) / 1e9 }
        run.propagation = samples.map { Optional($0) } + Array(repeating: nil, count: pending.values.map(\.count).reduce(0, +))
        run.falseSuspicionIncidents = suspicionIncidents.count
        run.falseDeathIncidents = deathIncidents.count
        return run
    }
}

/// A member at one incarnation: counts distinct incidents rather than per-view events.
struct SWIMGossipKey: Hashable {
    var node: SWIMNodeID
    var incarnation: UInt64
}
