import LodestarTopology
import XCTest

@testable import LodestarGossip

/// The authenticated gossip wire format, key files and the anti-replay guard (issue 5, security).
final class GossipWireTests: XCTestCase {
    let keyA = try! GossipKeyring(secrets: [Array(repeating: 0xA5, count: 32)])
    let keyB = try! GossipKeyring(secrets: [Array(repeating: 0x5A, count: 32)])

    /// One message of every kind, with gossip entries with and without metadata.
    static func samples() -> [SWIMMessage] {
        let md = SWIMMetadata(version: 7, bytes: Array("serving;0.93".utf8))
        let gossip = [
            SWIMGossip(node: "edge-eu-central", status: .alive, incarnation: 3, metadata: md, origin: "edge-eu-central"),
            SWIMGossip(node: "edge-us-east", status: .suspect, incarnation: 9, origin: "dns-1"),
            SWIMGossip(node: "edge-ap", status: .dead, incarnation: 1, origin: "dns-1"),
            SWIMGossip(node: "édge-ü", status: .left, incarnation: .max, origin: "x"),
        ]
        return [
            SWIMMessage(.ping(sequence: 1)),
            SWIMMessage(.ping(sequence: .max), gossip: gossip),
            SWIMMessage(.pingRequest(sequence: 42, target: "edge-us-east"), gossip: [gossip[0]]),
            SWIMMessage(.ack(sequence: 42), gossip: gossip),
            SWIMMessage(.nack(sequence: 43)),
            SWIMMessage(.sync(state: gossip, isReply: false)),
            SWIMMessage(.sync(state: [], isReply: true), gossip: [gossip[1]]),
        ]
    }

    func test_everyMessageKindRoundTrips() throws {
        for (i, m) in Self.samples().enumerated() {
            let packet = try XCTUnwrap(GossipWire.encode(m, from: "dns-1", sequence: 1000 + UInt64(i), keyring: keyA), "\(m)")
            XCTAssertLessThanOrEqual(packet.count, GossipWire.maxPacketBytes)
            XCTAssertEqual(packet.first, GossipWire.version)
            let decoded = try GossipWire.decode(packet, keyring: keyA).get()
            XCTAssertEqual(decoded.message, m)
            XCTAssertEqual(decoded.sender, "dns-1")
            XCTAssertEqual(decoded.sequence, 1000 + UInt64(i))
        }
    }

    func test_forgedTamperedAndForeignPacketsFailAuthentication() throws {
        let packet = try XCTUnwrap(GossipWire.encode(Self.samples()[3], from: "edge-1", sequence: 5, keyring: keyA))
        XCTAssertEqual(GossipWire.decode(packet, keyring: keyB), .failure(.authentication), "another cluster's key")
        // Flipping any single bit after the version byte breaks the tag.
        for i in 1..<packet.count {
            var bad = packet
            bad[i] ^= 0x01
            XCTAssertEqual(GossipWire.decode(bad, keyring: keyA), .failure(.authentication), "bit flip at \(i)")
        }
        var otherVersion = packet
        otherVersion[0] = 2
        XCTAssertEqual(GossipWire.decode(otherVersion, keyring: keyA), .failure(.version))
        // A sender cannot be renamed without the key: re-signing needs it.
        var renamed = packet
        renamed[2] = UInt8(ascii: "X")
        XCTAssertEqual(GossipWire.decode(renamed, keyring: keyA), .failure(.authentication))
    }

    func test_truncatedOversizedAndGarbagePacketsAreDroppedWithoutTrapping() throws {
        let packet = try XCTUnwrap(GossipWire.encode(Self.samples()[1], from: "edge-1", sequence: 5, keyring: keyA))
        for n in 0..<packet.count {
            let result = GossipWire.decode(Array(packet.prefix(n)), keyring: keyA)
            guard case .failure = result else { return XCTFail("a \(n)-byte prefix decoded") }
        }
        XCTAssertEqual(GossipWire.decode(Array(repeating: 1, count: GossipWire.maxPacketBytes + 1), keyring: keyA), .failure(.size))
        var rng = FastRandom(seed: 0x90551)
        for _ in 0..<20_000 {
            let n = Int(rng.next() % 1500)
            var junk = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if !junk.isEmpty && rng.next() % 2 == 0 { junk[0] = GossipWire.version }
            if case .success = GossipWire.decode(junk, keyring: keyA) { XCTFail("random bytes authenticated") }
        }
    }

    func test_authenticButMalformedBodiesAreRejected() throws {
        // Signed with the right key but with a broken body: the tag is fine, the parser must still refuse safely.
        func signed(_ body: [UInt8]) -> [UInt8] { body + GossipWire.tag(body, secret: Array(repeating: 0xA5, count: 32)) }
        let cases: [[UInt8]] = [
            [1, 0] + Array(repeating: 0, count: 8) + [1] + Array(repeating: 0, count: 8) + [0],  // empty sender
            [1, 3] + Array("abc".utf8) + Array(repeating: 0, count: 8) + [9, 0],                   // unknown kind
            [1, 3] + Array("abc".utf8) + Array(repeating: 0, count: 8) + [1] + Array(repeating: 0, count: 8) + [1],  // gossip count 1, no entry
            [1, 3] + Array("abc".utf8) + Array(repeating: 0, count: 8) + [4] + Array(repeating: 0, count: 8) + [0, 7],  // trailing byte
            [1, 2, 0xC3, 0x28] + Array(repeating: 0, count: 8) + [1] + Array(repeating: 0, count: 8) + [0],  // invalid UTF-8 name
        ]
        for (i, body) in cases.enumerated() {
            XCTAssertEqual(GossipWire.decode(signed(body), keyring: keyA), .failure(.malformed), "case \(i)")
        }
    }

    func test_keyRotationAcceptsEveryListedKeyAndSignsWithTheFirst() throws {
        let rotating = try GossipKeyring(secrets: [Array(repeating: 0x5A, count: 32), Array(repeating: 0xA5, count: 32)])
        let fromOld = try XCTUnwrap(GossipWire.encode(Self.samples()[0], from: "a", sequence: 1, keyring: keyA))
        let fromNew = try XCTUnwrap(GossipWire.encode(Self.samples()[0], from: "a", sequence: 1, keyring: rotating))
        XCTAssertNoThrow(try GossipWire.decode(fromOld, keyring: rotating).get(), "the old key is still accepted")
        XCTAssertNoThrow(try GossipWire.decode(fromNew, keyring: keyB).get(), "the first key signs")
        XCTAssertEqual(GossipWire.decode(fromNew, keyring: keyA), .failure(.authentication))
    }

    func test_oversizedMessagesAreNotEncoded() {
        let big = SWIMMetadata(version: 1, bytes: Array(repeating: 7, count: 1000))
        let many = (0..<3).map { SWIMGossip(node: SWIMNodeID("n\($0)"), status: .alive, incarnation: 1, metadata: big, origin: "n") }
        XCTAssertNil(GossipWire.encode(SWIMMessage(.ping(sequence: 1), gossip: many), from: "a", sequence: 1, keyring: keyA),
                     "over 1400 bytes")
        let longName = SWIMNodeID(String(repeating: "x", count: 256))
        XCTAssertNil(GossipWire.encode(SWIMMessage(.ping(sequence: 1)), from: longName, sequence: 1, keyring: keyA))
    }

    func test_keyFilesParseHexAndBase64AndRefuseBadLines() throws {
        let text = """
        # current key first
        000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f

        AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
        """
        let ring = try GossipKeyring.parse(text)
        XCTAssertEqual(ring.count, 2)
        XCTAssertEqual(ring.secrets[0], Array(0...31).map(UInt8.init))
        XCTAssertEqual(ring.secrets[1], Array(0...31).map(UInt8.init))
        XCTAssertThrowsError(try GossipKeyring.parse("# nothing\n")) { XCTAssertEqual(($0 as? GossipKeyError)?.reason, "no key given") }
        XCTAssertThrowsError(try GossipKeyring.parse("abc\n")) { XCTAssertEqual(($0 as? GossipKeyError)?.reason, "line 1: not hex or base64") }
        XCTAssertThrowsError(try GossipKeyring.parse("00ff\n")) {
            XCTAssertEqual(($0 as? GossipKeyError)?.reason, "key 1 has 2 bytes; at least 16 are needed")
        }
    }

    func test_replayGuardAcceptsEachSequenceOnceWithinTheWindowAndClock() {
        var guardian = GossipReplayGuard(maxSkewMs: 30_000)
        var seq = GossipSequence()
        let now: UInt64 = 1_764_000_000_000
        let a = seq.next(nowMs: now)
        let b = seq.next(nowMs: now)
        let c = seq.next(nowMs: now + 5)
        XCTAssertLessThan(a, b)
        XCTAssertLessThan(b, c)
        XCTAssertNil(guardian.check(sender: "e1", sequence: a, nowMs: now))
        XCTAssertEqual(guardian.check(sender: "e1", sequence: a, nowMs: now), .replay)
        XCTAssertNil(guardian.check(sender: "e1", sequence: c, nowMs: now))
        XCTAssertNil(guardian.check(sender: "e1", sequence: b, nowMs: now), "late but inside the window, first time")
        XCTAssertEqual(guardian.check(sender: "e1", sequence: b, nowMs: now), .replay)
        XCTAssertNil(guardian.check(sender: "e2", sequence: a, nowMs: now), "windows are per sender")
        // Older than the last 64 accepted packets of that sender.
        for i in 1...64 { XCTAssertNil(guardian.check(sender: "e1", sequence: c + UInt64(i) * 2, nowMs: now)) }
        XCTAssertEqual(guardian.check(sender: "e1", sequence: c + 1, nowMs: now), .replay, "below the window")
        XCTAssertNil(guardian.check(sender: "e1", sequence: c + 127, nowMs: now), "inside the window, new")
        // A captured packet replayed a minute later: the clock in its sequence gives it away even to a fresh guard.
        var fresh = GossipReplayGuard(maxSkewMs: 30_000)
        XCTAssertEqual(fresh.check(sender: "e1", sequence: a, nowMs: now + 60_000), .skew)
        XCTAssertEqual(fresh.check(sender: "e1", sequence: (now + 40_000) * 1024, nowMs: now), .skew, "from the future")
    }

    func test_replayGuardForgetsTheOldestSendersPastItsBound() {
        var guardian = GossipReplayGuard(maxSkewMs: 30_000, maxSenders: 3)
        let now: UInt64 = 1_764_000_000_000
        for (i, n) in ["a", "b", "c", "d"].enumerated() {
            XCTAssertNil(guardian.check(sender: SWIMNodeID(n), sequence: (now + UInt64(i)) * 1024, nowMs: now))
        }
        // "a" (the oldest) was forgotten: its replay is no longer recognised, the others still are.
        XCTAssertNil(guardian.check(sender: "a", sequence: now * 1024, nowMs: now))
        XCTAssertEqual(guardian.check(sender: "d", sequence: (now + 3) * 1024, nowMs: now), .replay)
    }

    func test_aLargeFullStateSyncIsSplitOverPacketsThatEachFit() throws {
        let md = SWIMMetadata(version: 3, bytes: EdgeState(mode: .serving, requestsPerSecond: 10, capacity: 100).encoded())
        let state = (0..<120).map { SWIMGossip(node: SWIMNodeID("edge-\($0)-somewhere"), status: .alive, incarnation: UInt64($0),
                                                metadata: md, origin: SWIMNodeID("edge-\($0)-somewhere")) }
        let piggyback = [SWIMGossip(node: "x", status: .suspect, incarnation: 1, origin: "y")]
        let message = SWIMMessage(.sync(state: state, isReply: false), gossip: piggyback)
        XCTAssertNil(GossipWire.encode(message, from: "dns-1", sequence: 1, keyring: keyA), "too large for one packet")
        var next: UInt64 = 100
        let packets = GossipWire.encodeAll(message, from: "dns-1", keyring: keyA) { next += 1; return next }
        XCTAssertGreaterThan(packets.count, 1)
        var merged: [SWIMGossip] = []
        var lastSequence: UInt64 = 0
        for (i, p) in packets.enumerated() {
            XCTAssertLessThanOrEqual(p.count, GossipWire.maxPacketBytes)
            let decoded = try GossipWire.decode(p, keyring: keyA).get()
            guard case .sync(let part, let isReply) = decoded.message.kind else { return XCTFail("not a sync") }
            XCTAssertEqual(isReply, i > 0, "only the first part asks for a reply")
            XCTAssertEqual(decoded.message.gossip, i == 0 ? piggyback : [], "piggybacked gossip rides on the first part")
            XCTAssertGreaterThan(decoded.sequence, lastSequence, "each part has its own, increasing sequence number")
            lastSequence = decoded.sequence
            merged += part
        }
        XCTAssertEqual(merged, state, "the parts carry the whole state in order")
        // Small messages stay one packet.
        XCTAssertEqual(GossipWire.encodeAll(SWIMMessage(.ping(sequence: 1)), from: "a", keyring: keyA) { 1 }.count, 1)
    }
}
