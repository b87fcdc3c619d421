@testable import LodestarDNS
import LodestarTopology
import XCTest

/// The fast path's name hash folds case eight bytes at a time: every byte value in every lane folds as DNS folds it.
final class FastNameHashTests: XCTestCase {
    func test_everyByteInEveryLaneFoldsLikeDNS() {
        for lane in 0..<8 {
            for b in 0...255 {
                let word = UInt64(0x6162_6364_6566_6768) & ~(0xFF << (8 * UInt64(lane))) | UInt64(b) << (8 * UInt64(lane))
                let folded = FastServiceTable.lowered(word)
                for k in 0..<8 {
                    let byte = UInt8(truncatingIfNeeded: word >> (8 * UInt64(k)))
                    let expected: UInt8 = (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
                    XCTAssertEqual(UInt8(truncatingIfNeeded: folded >> (8 * UInt64(k))), expected, "lane \(lane) byte \(b)")
                }
            }
        }
    }

    func test_namesInAnyCaseHashAlikeAndDifferentNamesApart() {
        var rng = FastRandom(seed: 7)
        var seen: [UInt64: [UInt8]] = [:]
        for _ in 0..<2_000 {
            let length = Int.random(in: 1...40, using: &rng)
            let name = (0..<length).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }
            let respelled = name.map { ($0 >= 0x61 && $0 <= 0x7A && Bool.random(using: &rng)) ? $0 & ~0x20 : $0 }
            let lower = name.map { ($0 >= 0x41 && $0 <= 0x5A) ? $0 | 0x20 : $0 }
            XCTAssertEqual(FastServiceTable.hash(respelled), FastServiceTable.hash(name))
            let h = FastServiceTable.hash(lower)
            if let other = seen[h] { XCTAssertEqual(other, lower, "two names, one hash") }
            seen[h] = lower
        }
    }
}
