import Synchronization

/// A Prometheus histogram of durations that takes many equal observations in one call (`record(_:count:)`), for the
/// DNS server's UDP loop: every query of a batch waits for the batch's send, so they share one duration.
/// swift-prometheus's `DurationHistogram` takes one observation per call, each under its lock with a walk of every
/// bucket; a batch of 32 cost 32 of those. The family renders itself in the exposition format (`MetricsHub` appends
/// it after the registry's text), with the bounds and sums written as swift-prometheus writes durations.
public final class BatchDurationHistogramFamily: Sendable {
    /// One series (one label set) of the family.
    public final class Series: Sendable {
        fileprivate let labels: String
        fileprivate let bounds: [Duration]
        /// The bounds in nanoseconds: a batch is recorded with integer compares (`Duration`'s 128-bit arithmetic takes
        /// generic paths).
        private let boundNanoseconds: [Int64]
        fileprivate let state: Mutex<State>

        fileprivate struct State {
            /// Observations per bucket, not cumulative (the last one: above every bound).
            var perBucket: [Int]
            var sumNanoseconds: Int64 = 0
            var count = 0
            var sum: Duration { .nanoseconds(sumNanoseconds) }
        }

        fileprivate init(labels: String, bounds: [Duration]) {
            self.labels = labels
            self.bounds = bounds
            boundNanoseconds = bounds.map(Self.nanoseconds)
            state = Mutex(State(perBucket: Array(repeating: 0, count: bounds.count + 1)))
        }

        /// Records `count` observations of `duration`.
        public func record(_ duration: Duration, count: Int = 1) {
            record(nanoseconds: Self.nanoseconds(duration), count: count)
        }

        /// Records `count` observations of `nanoseconds` (negative ones count as 0).
        public func record(nanoseconds: Int64, count: Int = 1) {
            guard count > 0 else { return }
            let d = max(0, nanoseconds)
            let bucket = boundNanoseconds.firstIndex { d <= $0 } ?? boundNanoseconds.count
            state.withLock { s in
                s.perBucket[bucket] += count
                s.sumNanoseconds &+= d &* Int64(count)
                s.count += count
            }
        }

        /// `duration` in whole nanoseconds, clamped to Int64.
        static func nanoseconds(_ duration: Duration) -> Int64 {
            let (seconds, attoseconds) = duration.components
            let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
            guard !overflow else { return seconds < 0 ? .min : .max }
            return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
        }
    }

    private let name: String
    private let help: String
    private let bounds: [Duration]
    private let series: Mutex<[Series]>

    /// A family `name` with HELP text `help` and the buckets' upper bounds `bounds` (ascending).
    public init(name: String, help: String, bounds: [Duration]) {
        self.name = name
        self.help = help
        self.bounds = bounds.sorted()
        series = Mutex([])
    }

    /// A new series with `labels` (names and values as the exposition writes them; values are escaped here).
    public func makeSeries(_ labels: [(String, String)]) -> Series {
        let rendered = labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
        let s = Series(labels: rendered, bounds: bounds)
        series.withLock { $0.append(s) }
        return s
    }

    /// The family in the text exposition format (0.0.4): HELP, TYPE, then per series the cumulative buckets, `+Inf`,
    /// `_sum` and `_count`.
    public func exposition() -> String {
        let all = series.withLock { $0 }
        var out = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for s in all {
            let state = s.state.withLock { $0 }
            let prefix = s.labels.isEmpty ? "" : s.labels + ","
            var cumulative = 0
            for (i, bound) in s.bounds.enumerated() {
                cumulative += state.perBucket[i]
                out += "\(name)_bucket{\(prefix)le=\"\(bound.bucketRepresentation)\"} \(cumulative)\n"
            }
            out += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(state.count)\n"
            let braces = s.labels.isEmpty ? "" : "{\(s.labels)}"
            out += "\(name)_sum\(braces) \(state.sum.bucketRepresentation)\n"
            out += "\(name)_count\(braces) \(state.count)\n"
        }
        return out
    }

    /// A label value as the exposition format wants it: backslash, double quote and line feed escaped.
    private static func escape(_ v: String) -> String {
        var out = ""
        for c in v {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}
