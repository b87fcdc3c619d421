import LodestarTopology
import Synchronization

/// Health of one origin server as the balancer sees it.
public enum OriginStatus: String, Sendable {
    case healthy
    /// Failed `fall` active checks in a row; back after `rise` successes.
    case down
    /// Taken out by passive ejection until its period ends.
    case ejected
}

/// A change of a server's health, returned by the recording calls so the caller can log it.
public enum HealthTransition: Sendable, Equatable {
    case becameHealthy(Int)
    case becameDown(Int)
    /// Ejected until this time (nanoseconds, the caller's clock).
    case ejected(Int, untilNanos: UInt64)
    /// An ejection ended (noticed lazily, at the next outcome recorded for the server).
    case restored(Int)
}

/// Health of one pool's servers, shared by every event loop.
///
/// Writes (check results, request outcomes) take a mutex; the per-request reads (`isAvailable`, `inFlight`) are
/// lock-free: each server publishes the time from which it is available (0: now, `UInt64.max`: down) in an atomic.
/// Server indices outside the pool are never available and are otherwise ignored.
public final class PoolHealth: Sendable {
    /// The lock-free part of one server.
    final class Slot: Sendable {
        /// Requests in flight.
        let inFlight = Atomic<Int>(0)
        /// Available when `now >= availableFrom`.
        let availableFrom = Atomic<UInt64>(0)
    }

    /// The locked part of one server.
    struct ServerState: Sendable {
        /// Down by active checks.
        var down = false
        /// Consecutive check results against the current state (failures while healthy, successes while down).
        var checkRun = 0
        /// Consecutive failed requests.
        var failureRun = 0
        /// End of the current (or last) ejection; nil when not ejected.
        var ejectedUntil: UInt64?
        /// Ejections in a row, reset by a success after the last one ended.
        var ejections = 0

        /// What `Slot.availableFrom` should hold.
        var availableFrom: UInt64 { down ? .max : ejectedUntil ?? 0 }
    }

    /// Servers in the pool.
    public let serverCount: Int
    private let rise: Int
    private let fall: Int
    private let passive: PassiveHealthSettings
    private let slots: [Slot]
    private let state: Mutex<[ServerState]>

    /// `active` nil: no active checks run (`recordCheck` then uses the default rise and fall). Every server starts
    /// healthy, except with `inheriting` (a previous pool's health and, per new server, its index there): a server
    /// that was there before keeps its state (down, ejected, runs of results); requests in flight stay counted where
    /// they started.
    public init(serverCount: Int, active: HealthCheckSettings?, passive: PassiveHealthSettings,
                inheriting: (PoolHealth, [Int?])? = nil) {
        self.serverCount = max(0, serverCount)
        let checks = active ?? HealthCheckSettings()
        rise = max(1, checks.rise)
        fall = max(1, checks.fall)
        self.passive = passive
        slots = (0..<self.serverCount).map { _ in Slot() }
        var states = Array(repeating: ServerState(), count: self.serverCount)
        if let (old, map) = inheriting {
            let oldStates = old.state.withLock { $0 }
            for (i, j) in map.enumerated() where i < states.count {
                guard let j, oldStates.indices.contains(j) else { continue }
                states[i] = oldStates[j]
                slots[i].availableFrom.store(states[i].availableFrom, ordering: .relaxed)
            }
        }
        state = Mutex(states)
    }

    /// Not down and not in an unexpired ejection.
    public func isAvailable(_ server: Int, now: UInt64) -> Bool {
        guard slots.indices.contains(server) else { return false }
        return now >= slots[server].availableFrom.load(ordering: .acquiring)
    }

    /// Servers available at `now`.
    public func availableCount(now: UInt64) -> Int {
        var count = 0
        for slot in slots where now >= slot.availableFrom.load(ordering: .acquiring) { count += 1 }
        return count
    }

    /// The server's status at `now` (down wins over ejected); `.down` for an index outside the pool.
    public func status(_ server: Int, now: UInt64) -> OriginStatus {
        guard slots.indices.contains(server) else { return .down }
        return state.withLock { servers in
            let s = servers[server]
            if s.down { return .down }
            if let until = s.ejectedUntil, now < until { return .ejected }
            return .healthy
        }
    }

    /// Records an active check: `fall` failures in a row take a healthy server down, `rise` successes bring it back.
    public func recordCheck(_ server: Int, success: Bool) -> HealthTransition? {
        guard slots.indices.contains(server) else { return nil }
        return state.withLock { servers in
            var s = servers[server]
            defer { store(s, at: server, in: &servers) }
            if s.down {
                guard success else { s.checkRun = 0; return nil }
                s.checkRun += 1
                guard s.checkRun >= rise else { return nil }
                s.down = false
                s.checkRun = 0
                s.failureRun = 0
                return .becameHealthy(server)
            }
            guard !success else { s.checkRun = 0; return nil }
            s.checkRun += 1
            guard s.checkRun >= fall else { return nil }
            s.down = true
            s.checkRun = 0
            return .becameDown(server)
        }
    }

    /// Records the outcome of a real request (failure: 5xx or connect failure) for passive ejection.
    ///
    /// `failures` consecutive failures eject the server for `ejectMs × 2^(k−1)` (k: ejections in a row, capped at
    /// 10 × ejectMs), unless more than `floor(serverCount × maxEjectedPercent / 100)` servers would then be ejected;
    /// the failure run then keeps counting, so the next failure tries again. Outcomes during an ejection (requests
    /// started before it) are ignored. A success once the ejection is over resets k.
    public func recordOutcome(_ server: Int, success: Bool, now: UInt64) -> HealthTransition? {
        guard passive.failures > 0, slots.indices.contains(server) else { return nil }
        return state.withLock { servers in
            var s = servers[server]
            defer { store(s, at: server, in: &servers) }
            var restored = false
            if let until = s.ejectedUntil {
                guard now >= until else { return nil }
                s.ejectedUntil = nil
                restored = true
            }
            if success {
                s.failureRun = 0
                s.ejections = 0
                return restored ? .restored(server) : nil
            }
            s.failureRun += 1
            guard s.failureRun >= passive.failures else { return restored ? .restored(server) : nil }
            let ejectedNow = servers.indices.reduce(0) { count, i in
                guard i != server, let until = servers[i].ejectedUntil, now < until else { return count }
                return count + 1
            }
            let cap = serverCount * min(max(0, passive.maxEjectedPercent), 100) / 100
            guard ejectedNow + 1 <= cap else { return restored ? .restored(server) : nil }
            s.ejections += 1
            s.failureRun = 0
            let until = Self.adding(now, ejectionNanos(count: s.ejections))
            s.ejectedUntil = until
            return .ejected(server, untilNanos: until)
        }
    }

    /// Clears ejections that have ended by `now` and reports them (for a periodic sweep that logs restorations).
    public func restoreExpired(now: UInt64) -> [HealthTransition] {
        state.withLock { servers in
            var out: [HealthTransition] = []
            for i in servers.indices {
                guard let until = servers[i].ejectedUntil, now >= until else { continue }
                var s = servers[i]
                s.ejectedUntil = nil
                store(s, at: i, in: &servers)
                out.append(.restored(i))
            }
            return out
        }
    }

    /// Requests in flight to the server.
    public func inFlight(_ server: Int) -> Int {
        guard slots.indices.contains(server) else { return 0 }
        return slots[server].inFlight.load(ordering: .relaxed)
    }

    /// A request to the server started.
    public func begin(_ server: Int) {
        guard slots.indices.contains(server) else { return }
        slots[server].inFlight.wrappingAdd(1, ordering: .relaxed)
    }

    /// A request to the server ended (never goes below zero, even if unbalanced).
    public func end(_ server: Int) {
        guard slots.indices.contains(server) else { return }
        let slot = slots[server]
        var current = slot.inFlight.load(ordering: .relaxed)
        while current > 0 {
            let (exchanged, original) = slot.inFlight.compareExchange(expected: current, desired: current - 1, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Length of the k-th ejection in a row: ejectMs × 2^(k−1), at most 10 × ejectMs.
    func ejectionNanos(count k: Int) -> UInt64 {
        let base = UInt64(max(0, passive.ejectMs)).multipliedReportingOverflow(by: 1_000_000)
        guard !base.overflow else { return .max }
        let cap = base.partialValue.multipliedReportingOverflow(by: 10)
        let capNanos = cap.overflow ? UInt64.max : cap.partialValue
        // 2^4 = 16 > 10: from the fifth ejection on the cap applies.
        guard k <= 4 else { return capNanos }
        let doubled = base.partialValue.multipliedReportingOverflow(by: 1 << UInt64(max(0, k - 1)))
        return doubled.overflow ? capNanos : min(doubled.partialValue, capNanos)
    }

    /// a + b, saturating.
    private static func adding(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let r = a.addingReportingOverflow(b)
        return r.overflow ? .max : r.partialValue
    }

    /// Writes a server's state back and publishes its availability.
    private func store(_ s: ServerState, at server: Int, in servers: inout [ServerState]) {
        servers[server] = s
        slots[server].availableFrom.store(s.availableFrom, ordering: .releasing)
    }
}
