import LodestarMetrics
import XCTest

/// `BatchDurationHistogramFamily`: a batch recorded in nanoseconds lands where the same batch as a `Duration` does
/// (bounds inclusive), and the exposition's buckets, sum and count follow.
final class BatchDurationHistogramTests: XCTestCase {
    func test_nanosecondsAndDurationsGiveTheSameExposition() {
        let bounds: [Duration] = [.microseconds(25), .microseconds(50), .milliseconds(1)]
        let a = BatchDurationHistogramFamily(name: "t_seconds", help: "h", bounds: bounds)
        let b = BatchDurationHistogramFamily(name: "t_seconds", help: "h", bounds: bounds)
        let sa = a.makeSeries([("transport", "udp")]), sb = b.makeSeries([("transport", "udp")])
        let batches: [(Int64, Int)] = [(25_000, 3), (25_001, 2), (50_000, 1), (999_999, 4), (1_000_001, 5), (0, 7), (-5, 1)]
        for (ns, count) in batches {
            sa.record(nanoseconds: ns, count: count)
            sb.record(.nanoseconds(ns), count: count)
        }
        sa.record(nanoseconds: 10, count: 0)  // no observations: nothing counted
        XCTAssertEqual(a.exposition(), b.exposition())
        let text = a.exposition()
        XCTAssertTrue(text.contains("t_seconds_bucket{transport=\"udp\",le=\"0.000025\"} 11\n"), text)  // 3 + 7 + 1
        XCTAssertTrue(text.contains("t_seconds_bucket{transport=\"udp\",le=\"0.00005\"} 14\n"), text)
        XCTAssertTrue(text.contains("t_seconds_bucket{transport=\"udp\",le=\"0.001\"} 18\n"), text)
        XCTAssertTrue(text.contains("t_seconds_bucket{transport=\"udp\",le=\"+Inf\"} 23\n"), text)
        XCTAssertTrue(text.contains("t_seconds_count{transport=\"udp\"} 23\n"), text)
        // 75,000 + 50,002 + 50,000 + 3,999,996 + 5,000,005 ns
        XCTAssertTrue(text.contains("t_seconds_sum{transport=\"udp\"} 0.009175003\n"), text)
    }
}
