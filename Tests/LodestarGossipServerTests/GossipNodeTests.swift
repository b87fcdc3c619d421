import Foundation
import LodestarGossip
import LodestarGossipServer
import Logging
import NIOCore
import NIOPosix
import Synchronization
import XCTest

/// Gossip members on real UDP sockets on loopback: convergence, payload spread, crash and leave detection, and
/// forged, replayed and garbage datagrams dropped without effect.
final class GossipNodeTests: XCTestCase {
    var group: MultiThreadedEventLoopGroup!
    var nodes: [GossipNode] = []
    let keyring = try! GossipKeyring(secrets: [Array("lodestar-test-key-0123456789".utf8)])

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        nodes = []
    }

    override func tearDown() async throws {
        for n in nodes { await n.stop() }
        try await group.shutdownGracefully()
    }

    /// Fast protocol timings for tests.
    static var settings: SWIMSettings {
        var s = SWIMSettings()
        s.probeInterval = .milliseconds(200)
        s.pingTimeout = .milliseconds(80)
        s.indirectPingTimeout = .milliseconds(100)
        s.suspicionTimeoutMin = .milliseconds(800)
        s.suspicionTimeoutMax = .seconds(3)
        return s
    }

    /// Starts `names` on ephemeral loopback ports and joins them to each other.
    func cluster(_ names: [String]) async throws -> [String: (node: GossipNode, address: SocketAddress)] {
        var out: [String: (GossipNode, SocketAddress)] = [:]
        for name in names {
            var logger = Logger(label: "gossip-\(name)")
            logger.logLevel = .warning
            let node = GossipNode(myself: SWIMNodeID(name), listen: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
                                  keyring: keyring, settings: Self.settings, seeds: names.map { SWIMNodeID($0) },
                                  group: group, logger: logger)
            nodes.append(node)
            out[name] = (node, try await node.start())
        }
        let peers = Dictionary(uniqueKeysWithValues: out.map { (SWIMNodeID($0.key), $0.value.1) })
        for (_, entry) in out { entry.0.join(peers: peers) }
        return out
    }

    /// Polls until `condition` holds; returns the seconds it took, nil after `timeout`.
    func eventually(_ timeout: TimeInterval, _ condition: () -> Bool) async -> TimeInterval? {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if condition() { return Date().timeIntervalSince(start) }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return condition() ? Date().timeIntervalSince(start) : nil
    }

    func status(_ node: GossipNode, of other: String) -> SWIMMemberStatus? {
        node.members.first { $0.node.name == other }?.status
    }

    func test_threeNodesConvergeAndSpreadPayloads() async throws {
        let c = try await cluster(["dns", "edge-a", "edge-b"])
        let dns = try XCTUnwrap(c["dns"]?.node)
        let alive = await eventually(3) {
            ["edge-a", "edge-b"].allSatisfy { self.status(dns, of: $0) == .alive }
        }
        XCTAssertNotNil(alive)
        let state = EdgeState(mode: .serving, requestsPerSecond: 120, cacheHitRatio: 9000, capacity: 1000)
        try XCTUnwrap(c["edge-a"]?.node).publish(state.encoded())
        let spread = await eventually(3) {
            dns.members.first { $0.node == "edge-a" }.flatMap { EdgeState(decoding: $0.metadata.bytes) } == state
        }
        XCTAssertNotNil(spread, "edge-a's state should reach the DNS node")
        XCTAssertGreaterThan(dns.stats.packetsIn.load(ordering: .relaxed), 0)
        XCTAssertEqual(dns.stats.droppedTotal, 0, "\(dns.stats.dropped)")
        print("GOSSIP-FIGURES: 3 nodes alive after \(String(format: "%.2f", alive ?? -1)) s; payload at the DNS node after "
              + "\(String(format: "%.2f", spread ?? -1)) s")
    }

    func test_aCrashedNodeIsDeclaredDeadAndALeavingOneLeft() async throws {
        let c = try await cluster(["dns", "edge-a", "edge-b", "edge-c"])
        let dns = try XCTUnwrap(c["dns"]?.node)
        _ = await eventually(3) { ["edge-a", "edge-b", "edge-c"].allSatisfy { self.status(dns, of: $0) == .alive } }
        // Crash: the socket closes without a word.
        try await XCTUnwrap(c["edge-b"]?.node).stop()
        let dead = await eventually(8) { self.status(dns, of: "edge-b") == .dead }
        XCTAssertNotNil(dead, "edge-b is \(String(describing: status(dns, of: "edge-b")))")
        // Leave: announced.
        try await XCTUnwrap(c["edge-c"]?.node).leave()
        let left = await eventually(3) { self.status(dns, of: "edge-c") == .left }
        XCTAssertNotNil(left, "edge-c is \(String(describing: status(dns, of: "edge-c")))")
        XCTAssertEqual(status(dns, of: "edge-a"), .alive, "no false verdict about a healthy member")
        print("GOSSIP-FIGURES: crash detected (dead) after \(String(format: "%.2f", dead ?? -1)) s with a 200 ms probe period; "
              + "leave seen after \(String(format: "%.2f", left ?? -1)) s")
    }

    /// A send error NIO treats as fatal (here EACCES: a broadcast address without SO_BROADCAST; on a real network
    /// ENETUNREACH when a route is withdrawn, EPERM from a firewall) closes the socket: the node opens it again and
    /// carries on, and sends to that address pause (1 s, doubling) so the socket is not closed again and again.
    func test_aSendErrorThatClosesTheSocketReopensIt() async throws {
        let c = try await cluster(["dns", "edge-a"])
        let dns = try XCTUnwrap(c["dns"]?.node)
        let edge = try XCTUnwrap(c["edge-a"]?.node)
        _ = await eventually(3) { self.status(dns, of: "edge-a") == .alive }
        dns.join(peers: [SWIMNodeID("ghost"): try SocketAddress(ipAddress: "255.255.255.255", port: 9)])
        let reopened = await eventually(3) { dns.stats.socketReopens.load(ordering: .relaxed) >= 1 }
        XCTAssertNotNil(reopened, "the socket was not reopened (reopens: \(dns.stats.socketReopens.load(ordering: .relaxed)))")
        let state = EdgeState(mode: .draining, requestsPerSecond: 1, cacheHitRatio: 0, capacity: 10)
        try edge.publish(state.encoded(), announce: true)
        let spread = await eventually(3) {
            dns.members.first { $0.node == "edge-a" }.flatMap { EdgeState(decoding: $0.metadata.bytes) } == state
        }
        XCTAssertNotNil(spread, "the reopened node no longer hears edge-a")
        // Over the next 2.5 s the ghost is probed again and again; the pause (1 s, then 2 s) lets it close the socket
        // at most twice more, and the two nodes that can talk end up alive to each other.
        let before = dns.stats.socketReopens.load(ordering: .relaxed)
        try await Task.sleep(nanoseconds: 2_500_000_000)
        let more = dns.stats.socketReopens.load(ordering: .relaxed) - before
        XCTAssertLessThanOrEqual(more, 2, "sends to an address that fails must pause")
        let settled = await eventually(3) { self.status(dns, of: "edge-a") == .alive && self.status(edge, of: "dns") == .alive }
        XCTAssertNotNil(settled, "edge-a is \(String(describing: status(dns, of: "edge-a"))) at the DNS node, "
                        + "the DNS node \(String(describing: status(edge, of: "dns"))) at edge-a")
        XCTAssertNotEqual(status(dns, of: "edge-a"), .dead, "no false verdict")
        // An IPv6 peer for an IPv4 socket is never written (NIO would close the socket on EAFNOSUPPORT).
        let reopens = dns.stats.socketReopens.load(ordering: .relaxed)
        dns.join(peers: [SWIMNodeID("ghost6"): try SocketAddress(ipAddress: "::1", port: 9)])
        try await Task.sleep(nanoseconds: 600_000_000)
        XCTAssertLessThanOrEqual(dns.stats.socketReopens.load(ordering: .relaxed) - reopens, 1,
                                 "only the broadcast ghost may close the socket; the IPv6 one is not written")
    }

    func test_forgedReplayedAndGarbageDatagramsAreDroppedWithoutEffect() async throws {
        let c = try await cluster(["dns", "edge-a"])
        let dns = try XCTUnwrap(c["dns"]?.node)
        let target = try XCTUnwrap(c["dns"]?.address)
        _ = await eventually(3) { self.status(dns, of: "edge-a") == .alive }
        let before = dns.members
        let sender = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        defer { sender.close(promise: nil) }
        func send(_ bytes: [UInt8]) async throws {
            try await sender.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: sender.allocator.buffer(bytes: bytes))).get()
        }
        // Forged: a "dead" verdict about edge-a, signed with another key.
        let otherKey = try GossipKeyring(secrets: [Array(repeating: 9, count: 32)])
        let verdict = SWIMMessage(.ping(sequence: 1), gossip: [SWIMGossip(node: "edge-a", status: .dead, incarnation: 99, origin: "x")])
        var seq = GossipSequence()
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        try await send(try XCTUnwrap(GossipWire.encode(verdict, from: "x", sequence: seq.next(nowMs: now), keyring: otherKey)))
        // Replayed: a valid ping from a new member "probe", sent twice.
        let ping = try XCTUnwrap(GossipWire.encode(SWIMMessage(.ping(sequence: 7)), from: "probe", sequence: seq.next(nowMs: now),
                                                   keyring: keyring))
        try await send(ping)
        try await send(ping)
        // Stale: valid key, a clock a minute old.
        try await send(try XCTUnwrap(GossipWire.encode(verdict, from: "old", sequence: (now - 60_000) * 1024, keyring: keyring)))
        // Garbage, truncated and oversized.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 { try await send((0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }) }
        try await send(Array(ping.prefix(ping.count / 2)))
        try await send(Array(repeating: 1, count: 1500))
        let counted = await eventually(3) {
            let d = dns.stats.dropped
            return d[.authentication, default: 0] >= 1 && d[.replay, default: 0] >= 1 && d[.skew, default: 0] >= 1
        }
        XCTAssertNotNil(counted, "\(dns.stats.dropped)")
        try await Task.sleep(nanoseconds: 300_000_000)
        XCTAssertEqual(status(dns, of: "edge-a"), .alive, "a forged verdict must not change membership")
        XCTAssertEqual(before.first { $0.node == "edge-a" }?.incarnation, dns.members.first { $0.node == "edge-a" }?.incarnation)
        print("GOSSIP-FIGURES: dropped \(dns.stats.dropped.map { "\($0.key.rawValue) \($0.value)" }.sorted().joined(separator: ", "))")
    }
}
