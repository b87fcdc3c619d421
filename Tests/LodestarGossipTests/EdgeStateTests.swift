import LodestarTopology
import XCTest

@testable import LodestarGossip

/// The edge-state record edges publish as gossip metadata.
final class EdgeStateTests: XCTestCase {
    func test_roundTripAndSize() throws {
        let s = EdgeState(mode: .degraded, healthyOrigins: 5000, connections: 1234, requestsPerSecond: 45_000,
                          cacheHitRatio: 9312, capacity: 60_000)
        let bytes = s.encoded()
        XCTAssertEqual(bytes.count, EdgeState.encodedBytes)
        XCTAssertEqual(EdgeState(decoding: bytes), s)
        XCTAssertEqual(s.load, 0.75, accuracy: 1e-9)
        XCTAssertEqual(EdgeState(mode: .serving).load, 0, "unknown capacity is never overloaded")
        for mode in EdgeState.Mode.allCases {
            XCTAssertEqual(EdgeState(decoding: EdgeState(mode: mode).encoded())?.mode, mode)
        }
    }

    func test_laterVersionsAreReadForKnownFieldsAndBadRecordsRefused() {
        let s = EdgeState(mode: .serving, requestsPerSecond: 10, capacity: 100)
        var later = s.encoded()
        later[0] = 2
        later.append(contentsOf: [9, 9, 9])
        XCTAssertEqual(EdgeState(decoding: later), s, "a version-2 record with more fields still reads")
        var unknownMode = s.encoded()
        unknownMode[1] = 7
        XCTAssertNil(EdgeState(decoding: unknownMode))
        var zero = s.encoded()
        zero[0] = 0
        XCTAssertNil(EdgeState(decoding: zero))
        for n in 0..<EdgeState.encodedBytes { XCTAssertNil(EdgeState(decoding: Array(s.encoded().prefix(n))), "\(n) bytes") }
        XCTAssertEqual(EdgeState(mode: .serving, healthyOrigins: 60_000, cacheHitRatio: 60_000).healthyOrigins, 10_000, "clamped")
        var rng = FastRandom(seed: 18)
        for _ in 0..<10_000 {
            _ = EdgeState(decoding: (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
    }

    func test_aRecordRidesInASignedGossipPacket() throws {
        let keyring = try GossipKeyring(secrets: [Array(repeating: 1, count: 16)])
        let state = EdgeState(mode: .draining, connections: 3)
        let md = SWIMMetadata(version: 12, bytes: state.encoded())
        let message = SWIMMessage(.ping(sequence: 1), gossip: [SWIMGossip(node: "e1", status: .alive, incarnation: 2, metadata: md, origin: "e1")])
        let packet = try XCTUnwrap(GossipWire.encode(message, from: "e1", sequence: 99, keyring: keyring))
        let back = try GossipWire.decode(packet, keyring: keyring).get()
        XCTAssertEqual(back.message.gossip.first?.metadata.flatMap { EdgeState(decoding: $0.bytes) }, state)
    }
}
