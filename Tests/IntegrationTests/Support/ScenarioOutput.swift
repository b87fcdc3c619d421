import Foundation

/// What a region scenario printed (Scripts/regions, with or without `--containers`): `PASS`/`FAIL`/`SKIP` step lines,
/// `FIGURE` lines ("… after X s"), `latency` and `teardown:` lines. Shared by the region tests.
struct ScenarioOutput {
    let lines: [String]

    init(_ text: String) { lines = text.split(separator: "\n").map(String.init) }

    /// The first line that starts with `prefix` and contains `needle`.
    func line(_ prefix: String, _ needle: String) -> String? {
        lines.first { $0.hasPrefix(prefix) && $0.contains(needle) }
    }

    func has(_ prefix: String, _ needle: String) -> Bool { line(prefix, needle) != nil }

    /// A step failed.
    var failed: Bool { lines.contains { $0.hasPrefix("FAIL") } }

    /// The seconds of a figure line ("… answered ADDR after 1.23 s (limit 2 s)").
    static func seconds(_ figure: String?) -> Double? {
        figure?.components(separatedBy: " after ").last.flatMap { Double($0.split(separator: " ").first ?? "") }
    }

    /// Prints the figures, latency, teardown and any `extra` prefixed lines as `EDGE-FIGURES: <tag>: …`.
    func printFigures(tag: String, extra: [String] = []) {
        for l in lines where (["FIGURE ", "latency", "teardown:"] + extra).contains(where: { l.hasPrefix($0) }) {
            print("EDGE-FIGURES: \(tag): " + l.replacingOccurrences(of: "FIGURE ", with: ""))
        }
    }
}
