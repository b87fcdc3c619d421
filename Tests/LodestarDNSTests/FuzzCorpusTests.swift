import Foundation
import LodestarDNS
import LodestarTopology
import XCTest

/// The committed fuzz seeds (Fuzz/corpus) and random mutations of them never trap the decoder or the answer engine.
final class FuzzCorpusTests: XCTestCase {
    func corpus() throws -> [[UInt8]] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("Fuzz/corpus")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertGreaterThan(files.count, 10)
        return try files.map { Array(try Data(contentsOf: dir.appendingPathComponent($0))) }
    }

    func test_seedsAndMutationsAreAnsweredOrRefusedWithoutTrapping() throws {
        let authority = try Fixture.authority()
        var rng = FastRandom(seed: 99)
        var answered = 0, dropped = 0
        for seed in try corpus() {
            for round in 0..<200 {
                var input = seed
                if round > 0 {
                    for _ in 0..<(1 + Int(rng.next() % 4)) where !input.isEmpty {
                        let i = Int(rng.next() % UInt64(input.count))
                        switch rng.next() % 3 {
                        case 0: input[i] = UInt8(truncatingIfNeeded: rng.next())
                        case 1: input.remove(at: i)
                        default: input.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                        }
                    }
                }
                if let m = try? DNSMessage(decoding: input) {
                    XCTAssertEqual(try DNSMessage(decoding: m.encoded()), m)
                }
                if let r = authority.respond(to: input, from: IPAddress("10.0.0.1")!, transport: .udp, random: &rng) {
                    XCTAssertNoThrow(try DNSMessage(decoding: r.bytes))
                    XCTAssertLessThanOrEqual(r.bytes.count, 1232)
                    answered += 1
                } else {
                    dropped += 1
                }
            }
        }
        XCTAssertGreaterThan(answered, 1000)
        XCTAssertGreaterThan(dropped, 0)
    }
}
