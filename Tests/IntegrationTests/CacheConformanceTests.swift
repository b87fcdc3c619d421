import Foundation
import XCTest

/// The HTTP working group's cache-tests cases (transcribed in `Tests/Conformance/cases`, run by our own runner,
/// `Tests/Conformance/cache_conformance.py`) against `lodestar edge` with a caching route. Every case the suite marks
/// required must pass, and the overall count must not fall below what the edge passed when this test was written.
final class CacheConformanceTests: EdgeTestCase {
    /// Passing count when the test was written: 317 of 368 (5 browser-only cases skipped). A few timing-dependent
    /// optimal and check cases may wobble on a loaded machine, hence the margin.
    static let floor = 305

    func test_cacheTestsSuiteThroughTheEdge() throws {
        let python = try EdgeTools.requirePython()
        let conformance = IntegrationEnvironment.testsFolder.deletingLastPathComponent().appendingPathComponent("Conformance")
        let runner = conformance.appendingPathComponent("cache_conformance.py").path
        let originPort = try freePort()
        let edge = try startEdge(pools: ["conf": ["servers": ["127.0.0.1:\(originPort)"]]],
                                 routes: [route(pool: "conf", extra: ["cache": ["enabled": true, "graceSeconds": 60]])],
                                 proxy: ["accessLog": false, "compression": ["enabled": false], "cache": ["memoryBytes": 64 << 20]])
        let json = workFolder.appendingPathComponent("conformance.json").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [runner, "--proxy", "http://127.0.0.1:\(edge.port)", "--origin-port", "\(originPort)",
                       "--label", "lodestar", "--json", json]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let collected = EdgeCollector<Data>()
        let reader = Thread { collected.append(out.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        XCTAssertTrue(waitForExit(p, timeout: 300), "the conformance runner did not finish in 300 s")
        while collected.all.isEmpty { usleep(20_000) }
        let text = String(decoding: collected.all.first ?? Data(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, "runner failed:\n\(text.suffix(4000))")

        let data = try Data(contentsOf: URL(fileURLWithPath: json))
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let results = try XCTUnwrap(report["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, 368, "every transcribed case runs")
        let passed = results.filter { $0["status"] as? String == "PASS" }
        let requiredFailures = results.filter { $0["kind"] as? String == "required" && $0["status"] as? String == "FAIL" }
        XCTAssertEqual(requiredFailures.map { "\($0["id"] ?? "?"): \($0["reason"] ?? "")" }, [],
                       "required cache-tests cases must pass")
        XCTAssertGreaterThanOrEqual(passed.count, Self.floor, text.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
            .joined(separator: "\n"))
        // The required cases that passed when written are listed; none may go missing from the results.
        let listed = try String(contentsOf: conformance.appendingPathComponent("lodestar-passing.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }.map(String.init)
        let kinds = Dictionary(results.map { ($0["id"] as? String ?? "", $0["kind"] as? String ?? "") }, uniquingKeysWith: { a, _ in a })
        let requiredListed = listed.filter { kinds[$0] == "required" }
        let passedIds = Set(passed.compactMap { $0["id"] as? String })
        XCTAssertEqual(requiredListed.filter { !passedIds.contains($0) }, [])
        for line in text.split(separator: "\n") where line.hasPrefix("CONFORMANCE") || line.hasPrefix("BREAKDOWN") {
            print("EDGE-FIGURES: \(line)")
        }
    }
}
