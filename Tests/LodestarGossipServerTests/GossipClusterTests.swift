import Foundation
import LodestarGeo
import LodestarSelection
import LodestarGossip
import LodestarGossipServer
import LodestarTopology
import XCTest

/// From gossip members to the DNS tier's edge health, and where keys come from.
final class GossipClusterTests: XCTestCase {
    func member(_ id: String, _ status: SWIMMemberStatus, _ state: EdgeState? = nil) -> SWIMMember {
        SWIMMember(node: SWIMNodeID(id), status: status, incarnation: 1,
                   metadata: state.map { SWIMMetadata(version: 1, bytes: $0.encoded()) } ?? .empty)
    }

    func test_membersBecomeEdgeHealth() {
        let edges: Set<String> = ["a", "b", "c", "d", "e", "f", "g", "h"]
        let health = GossipCluster.edgeHealth([
            member("a", .alive, EdgeState(mode: .serving, requestsPerSecond: 100, capacity: 1000)),
            member("b", .suspect, EdgeState(mode: .serving)),
            member("c", .dead),
            member("d", .left),
            member("e", .alive, EdgeState(mode: .draining)),
            member("f", .alive, EdgeState(mode: .degraded, healthyOrigins: 0)),
            member("g", .alive, EdgeState(mode: .serving, requestsPerSecond: 1200, capacity: 1000)),
            member("h", .alive),
            member("dns-1", .dead),
        ], edgeIds: edges, watermark: 0.9)
        XCTAssertEqual(health["a"], .healthy)
        XCTAssertEqual(health["b"], .suspect)
        XCTAssertEqual(health["c"], .down)
        XCTAssertEqual(health["d"], .down)
        XCTAssertEqual(health["e"], .down, "draining edges get no new users")
        XCTAssertEqual(health["f"], .down, "no healthy origin at all")
        guard case .overloaded(let shed) = health["g"] else { return XCTFail("\(String(describing: health["g"]))") }
        XCTAssertEqual(shed, 0.25, accuracy: 1e-9, "1.2× load over a 0.9 watermark: shed a quarter to get back to it")
        XCTAssertEqual(health["h"], .healthy, "alive, nothing published yet")
        XCTAssertNil(health["dns-1"], "DNS nodes are not edges")
        let partial = GossipCluster.edgeHealth([member("a", .alive, EdgeState(mode: .degraded, healthyOrigins: 5000))],
                                               edgeIds: ["a"], watermark: 0.9)
        XCTAssertEqual(partial["a"], .healthy, "some origins left: still serving")
    }

    func test_keysComeFromTheFileOrTheEnvironmentAndAreRequired() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("gossip.key").path
        try "# key\n000102030405060708090a0b0c0d0e0f\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try GossipCluster.keyring(GossipSettings(keyFile: file), environment: [:]).count, 1)
        let env = ["LODESTAR_GOSSIP_KEY": "000102030405060708090a0b0c0d0e0f,AAECAwQFBgcICQoLDA0ODw=="]
        XCTAssertEqual(try GossipCluster.keyring(GossipSettings(), environment: env).count, 2)
        XCTAssertThrowsError(try GossipCluster.keyring(GossipSettings(), environment: [:])) {
            XCTAssertEqual("\($0)", "gossip: no key: set gossip.keyFile or the environment variable LODESTAR_GOSSIP_KEY")
        }
        XCTAssertThrowsError(try GossipCluster.keyring(GossipSettings(keyFile: folder.appendingPathComponent("nope").path), environment: env)) {
            XCTAssertTrue("\($0)".hasPrefix("gossip.keyFile: cannot read "), "\($0)")
        }
        XCTAssertThrowsError(try GossipCluster.keyring(GossipSettings(), environment: ["LODESTAR_GOSSIP_KEY": "short"])) {
            XCTAssertEqual("\($0)", "gossip key (LODESTAR_GOSSIP_KEY): line 1: not hex or base64")
        }
    }

    func test_timingsFollowTheProbePeriod() {
        let s = GossipCluster.swimSettings(GossipSettings(probeIntervalMs: 500))
        XCTAssertEqual(s.probeInterval, .milliseconds(500))
        XCTAssertEqual(s.pingTimeout, .milliseconds(150))
        XCTAssertEqual(s.indirectPingTimeout, .milliseconds(200))
        XCTAssertEqual(s.suspicionTimeoutMin, .milliseconds(1000))
        XCTAssertEqual(s.suspicionTimeoutMax, .milliseconds(5000))
        XCTAssertEqual(s.suspicionConfirmationsExpected, 2)
    }
}
