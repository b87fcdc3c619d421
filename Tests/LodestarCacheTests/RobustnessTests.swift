import LodestarTopology
import XCTest
@testable import LodestarCache

/// Random header soup through every public entry point: the assertion is that nothing traps.
final class RobustnessTests: XCTestCase {
    private static let alphabet: [UInt8] = Array(#"max-age=1s-maxage"no-cache,private W/*:/?#0123456789GMT "#.utf8)
        + [0x00, 0x09, 0x5C, 0x7F, 0xC3, 0xFF]

    private func junk(_ rng: inout FastRandom) -> String {
        let len = Int.random(in: 0...48, using: &rng)
        let bytes = (0..<len).map { _ in Self.alphabet.randomElement(using: &rng) ?? 0 }
        return String(decoding: bytes, as: UTF8.self)
    }

    func test_rfc9111_allEntryPoints_garbageBytesNeverTrap() {
        var rng = FastRandom(seed: 9111)
        let names = ["Cache-Control", "Pragma", "Age", "Date", "Expires", "Last-Modified", "ETag", "Vary",
                     "If-None-Match", "If-Modified-Since", "Authorization", "Connection", "Location", "Content-Location"]
        for _ in 0..<1_500 {
            let req: HTTPFields = names.compactMap { name in Bool.random(using: &rng) ? (name, junk(&rng)) : nil }
            let res: HTTPFields = names.compactMap { name in Bool.random(using: &rng) ? (name, junk(&rng)) : nil }
            let times = (0..<3).map { _ in Int64.random(in: Int64.min...Int64.max, using: &rng) }
            let status = Int.random(in: -10...1_000, using: &rng)
            let stored = StoredResponseInfo(status: status, headers: res, requestTime: times[0], responseTime: times[1])
            _ = CachePolicy.isStorable(method: "GET", requestHeaders: req, status: status, responseHeaders: res)
            _ = CachePolicy.decide(requestHeaders: req, stored: stored, now: times[2])
            _ = CachePolicy.canServeStaleOnError(stored: stored, now: times[2], requestHeaders: req)
            _ = CachePolicy.conditionalHeaders(stored: stored)
            _ = CachePolicy.clientConditionMatches(requestHeaders: req, stored: stored)
            _ = CachePolicy.updatedHeaders(stored: stored, notModified: req)
            _ = CachePolicy.notModifiedSelects(stored: stored, notModified: req)
            _ = CachePolicy.headersToStore(responseHeaders: res)
            _ = VaryKey.matches(storedVary: junk(&rng), storedRequestHeaders: req, requestHeaders: res)
            _ = Invalidation.targets(
                method: "POST", status: 200, requestURI: junk(&rng), responseHeaders: res, authority: junk(&rng))
            _ = HTTPDate.parse(junk(&rng), now: times[2])
        }
    }
}
