@_exported import Prometheus
import Synchronization

/// A process's metrics: one swift-prometheus registry that every role registers its families on (each with HELP
/// text, which `promtool check metrics` requires and swift-metrics' API cannot carry), plus collectors that bring
/// gauges and mirrored counters up to date just before each scrape.
public final class MetricsHub: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    private let collectors = Mutex<[@Sendable () -> Void]>([])
    private let ownFamilies = Mutex<[BatchDurationHistogramFamily]>([])

    /// A hub over `registry` (a new one by default).
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// Runs `collect` before every scrape (to set gauges and advance mirrored counters).
    public func addCollector(_ collect: @escaping @Sendable () -> Void) {
        collectors.withLock { $0.append(collect) }
    }

    /// The Prometheus text exposition (format 0.0.4) of everything registered, after running the collectors.
    public func exposition() -> String {
        for collect in collectors.withLock({ $0 }) { collect() }
        return registry.emitToString() + ownFamilies.withLock { $0 }.map { $0.exposition() }.joined()
    }

    /// A batch duration histogram family, rendered after the registry's families (its name must be none of theirs).
    public func batchDurationHistogram(_ name: String, buckets: [Duration], help: String) -> BatchDurationHistogramFamily {
        let family = BatchDurationHistogramFamily(name: name, help: help, bounds: buckets)
        ownFamilies.withLock { $0.append(family) }
        return family
    }

    /// The content type of `exposition()`.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The counter `name{labels}` (registered on first use; the same object afterwards).
    public func counter(_ name: String, _ labels: [(String, String)] = [], help: String) -> Counter {
        registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels)
    }

    /// The gauge `name{labels}`.
    public func gauge(_ name: String, _ labels: [(String, String)] = [], help: String) -> Gauge {
        registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels)
    }

    /// The duration histogram `name{labels}` with `buckets` (fixed by the family's first series).
    public func durationHistogram(_ name: String, _ labels: [(String, String)] = [], buckets: [Duration],
                                  help: String) -> DurationHistogram {
        registry.makeDurationHistogram(descriptor: Self.descriptor(name, help), labels: labels, buckets: buckets)
    }

    /// A descriptor carrying the whole name (namespace and unit are already in it) and the HELP text.
    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}

/// A Prometheus counter whose value lives elsewhere (an atomic that `/status` also reads): `sync(to:)` advances it
/// to that value at scrape time, so the hot path pays for one atomic only.
public final class MirroredCounter: Sendable {
    private let counter: Counter
    private let last = Mutex<Int64>(0)

    /// Registers (or finds) the series `name{labels}` on `hub`.
    public init(_ hub: MetricsHub, name: String, labels: [(String, String)] = [], help: String) {
        counter = hub.counter(name, labels, help: help)
    }

    /// Advances the counter to `value`. A value below the last one means the source restarted from zero (a reload
    /// replaced it): the counter then advances by the whole new value, so it never goes back.
    public func sync(to value: Int) {
        let delta = last.withLock { last -> Int64 in
            let v = Int64(value)
            defer { last = v }
            return v >= last ? v - last : v
        }
        if delta > 0 { counter.increment(by: delta) }
    }
}

/// Label-keyed counters of one family created on first use and kept (registry lookups take a lock; this is one
/// dictionary read under a short lock after the first time).
public final class CounterFamily<Key: Hashable & Sendable>: Sendable {
    private let hub: MetricsHub
    private let name: String
    private let help: String
    private let labels: @Sendable (Key) -> [(String, String)]
    private let series = Mutex<[Key: Counter]>([:])

    /// A family `name` whose series' labels are derived from a key by `labels`.
    public init(_ hub: MetricsHub, name: String, help: String, labels: @escaping @Sendable (Key) -> [(String, String)]) {
        self.hub = hub
        self.name = name
        self.help = help
        self.labels = labels
    }

    /// The counter for `key`.
    public func counter(_ key: Key) -> Counter {
        if let c = series.withLock({ $0[key] }) { return c }
        let c = hub.counter(name, labels(key), help: help)
        series.withLock { $0[key] = c }
        return c
    }

    /// Adds `amount` to the series of `key`.
    public func increment(_ key: Key, by amount: Int = 1) {
        counter(key).increment(by: Int64(amount))
    }
}

/// An "enum gauge": one series per state of each subject, 1 for the state it is in and 0 for the others.
public final class StateGauge: Sendable {
    private let hub: MetricsHub
    private let name: String
    private let help: String
    private let subjectLabel: String
    private let states: [String]
    private let extra: [(String, String)]
    private let series = Mutex<[String: [Gauge]]>([:])

    /// A family `name{<extra>, <subjectLabel>=…, state=…}` over the fixed `states`.
    public init(_ hub: MetricsHub, name: String, help: String, subjectLabel: String, states: [String],
                extra: [(String, String)] = []) {
        self.hub = hub
        self.name = name
        self.help = help
        self.subjectLabel = subjectLabel
        self.states = states
        self.extra = extra
    }

    /// Sets `subject`'s series: 1 for `state`, 0 for the others.
    public func set(_ subject: String, to state: String) {
        let gauges = series.withLock { table -> [Gauge] in
            if let g = table[subject] { return g }
            let made = states.map { s in
                hub.gauge(name, extra + [(subjectLabel, subject), ("state", s)], help: help)
            }
            table[subject] = made
            return made
        }
        for (i, s) in states.enumerated() { gauges[i].set(to: s == state ? 1.0 : 0.0) }
    }
}
