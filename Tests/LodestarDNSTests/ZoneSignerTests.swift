import Foundation
import LodestarDNS
import Synchronization
import XCTest

/// The signer's pure parts: canonical form, signatures that verify, the type bitmap, and the signature cache's refresh.
final class ZoneSignerTests: XCTestCase {
    let apex = DNSName("example.test")!

    func rrset(_ owner: String, _ addresses: [UInt32], ttl: UInt32 = 30) -> [ResourceRecord] {
        addresses.map { ResourceRecord(name: DNSName(owner)!, type: RRType.a, rclass: RRClass.in, ttl: ttl, rdata: .a($0)) }
    }

    /// Fields of an RRSIG's RDATA: (type covered, labels, expiration, inception, key tag, signature).
    func fields(_ rr: ResourceRecord) throws -> (UInt16, UInt8, UInt32, UInt32, UInt16, [UInt8]) {
        guard case .unknown(let b) = rr.rdata, b.count > 18 + apex.wire.count else { throw XCTSkip("not an RRSIG") }
        func u32(_ i: Int) -> UInt32 { UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3]) }
        return (UInt16(b[0]) << 8 | UInt16(b[1]), b[3], u32(8), u32(12), UInt16(b[16]) << 8 | UInt16(b[17]),
                Array(b[(18 + apex.wire.count)...]))
    }

    func test_signatureVerifiesOverTheCanonicalRRsetWhateverTheOrderAndCase() throws {
        for algorithm in DNSSECKey.Algorithm.allCases {
            let key = DNSSECKey.generate(algorithm)
            let signer = ZoneSigner(apex: apex, keys: [.init(key)], clock: { 1_800_000_000 })
            let sigs = signer.signatures(for: rrset("WWW.Example.test", [0x7F000102, 0x7F000101]))
            XCTAssertEqual(sigs.count, 1)
            let (covered, labels, expiration, inception, tag, signature) = try fields(sigs[0])
            XCTAssertEqual(covered, RRType.a)
            XCTAssertEqual(labels, 3)
            XCTAssertEqual(inception, 1_800_000_000 - 3_600, "back-dated by the offset")
            XCTAssertEqual(expiration, 1_800_000_000 + 7 * 86_400)
            XCTAssertEqual(tag, key.keyTag)
            XCTAssertEqual(sigs[0].name, DNSName("WWW.Example.test"), "the owner keeps the answer's spelling")
            guard case .unknown(let rdata) = sigs[0].rdata else { return XCTFail() }
            // What a validator rebuilds: the RRSIG RDATA without the signature, then the RRset in canonical order.
            let signed = Array(rdata.prefix(18 + apex.wire.count))
                + ZoneSignerTests.canonical("www.example.test", [0x7F000101, 0x7F000102], ttl: 30)
            XCTAssertTrue(key.verify(signature, over: signed), "\(algorithm)")
            XCTAssertFalse(key.verify(signature, over: signed.dropLast().map { $0 } + [1]), "a flipped byte fails")
        }
    }

    static func canonical(_ owner: String, _ addresses: [UInt32], ttl: UInt32) -> [UInt8] {
        var out = [UInt8]()
        for a in addresses {
            out += DNSName(owner)!.wire + [0, 1, 0, 1] + [UInt8(ttl >> 24), UInt8(ttl >> 16 & 0xFF), UInt8(ttl >> 8 & 0xFF), UInt8(ttl & 0xFF)]
            out += [0, 4, UInt8(a >> 24), UInt8(a >> 16 & 0xFF), UInt8(a >> 8 & 0xFF), UInt8(a & 0xFF)]
        }
        return out
    }

    func test_signaturesAreKeptUntilTheRefreshWindowThenMadeAgain() throws {
        let now = Mutex<UInt32>(1_800_000_000)
        let timing = ZoneSigner.Timing(validitySeconds: 86_400, inceptionOffsetSeconds: 60, refreshBeforeSeconds: 3_600)
        let signer = ZoneSigner(apex: apex, keys: [.init(.generate())], timing: timing, clock: { now.withLock { $0 } })
        let set = rrset("www.example.test", [1])
        let first = signer.signatures(for: set)
        XCTAssertEqual(signer.signaturesMade, 1)
        now.withLock { $0 += 86_400 - 3_600 - 1 }
        XCTAssertEqual(signer.signatures(for: set), first, "kept while more than refreshBefore remains")
        XCTAssertEqual(signer.signaturesMade, 1)
        XCTAssertEqual(signer.signatures(for: rrset("www.example.test", [2])).count, 1, "another RRset is signed apart")
        XCTAssertEqual(signer.signaturesMade, 2)
        now.withLock { $0 += 2 }
        let second = signer.signatures(for: set)
        XCTAssertEqual(signer.signaturesMade, 3, "inside the refresh window: signed again")
        XCTAssertGreaterThan(try fields(second[0]).2, try fields(first[0]).2, "a later expiry")
    }

    func test_publishedOnlyKeysSignTheDNSKEYSetAlone() {
        let active = DNSSECKey.generate(), waiting = DNSSECKey.generate()
        let signer = ZoneSigner(apex: apex, keys: [.init(active), .init(waiting, signs: false)])
        XCTAssertEqual(signer.dnskeyRecords(ttl: 3600).count, 2)
        XCTAssertEqual(signer.signatures(for: rrset("www.example.test", [1])).count, 1)
        XCTAssertEqual(signer.signatures(for: signer.dnskeyRecords(ttl: 3600)).count, 2)
    }

    func test_keyFilesRoundTripAndTheDSMatchesAKnownDigest() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zsk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for algorithm in DNSSECKey.Algorithm.allCases {
            let key = DNSSECKey.generate(algorithm, flags: 256)
            let stem = folder.appendingPathComponent(key.fileStem(owner: apex)).path
            try key.privateFileText(owner: apex).write(toFile: stem + ".private", atomically: true, encoding: .utf8)
            try key.publicFileText(owner: apex).write(toFile: stem + ".key", atomically: true, encoding: .utf8)
            let back = try DNSSECKey.load(privateFile: stem + ".private")
            XCTAssertEqual(back.dnskeyRData, key.dnskeyRData)
            XCTAssertEqual(back.flags, 256, "flags from the .key file")
        }
        // RFC 6605 §6.1's example key (P-256, flags 257, tag 55648) and its SHA-256 DS.
        let rfc = try DNSSECKey(algorithm: .ecdsaP256SHA256, privateKey: Array(Data(base64Encoded: "GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=")!))
        XCTAssertEqual(rfc.keyTag, 55648)
        XCTAssertEqual(rfc.dsRecord(owner: DNSName("example.net")!),
                       "example.net. IN DS 55648 13 2 B4C8C1FE2E7477127B27115656AD6256F424625BF5C1E2770CE6D6E37DF61D17")
        XCTAssertThrowsError(try DNSSECKey.load(privateFile: folder.appendingPathComponent("missing.private").path))
    }

    func test_typeBitmap() {
        XCTAssertEqual(ZoneSigner.typeBitmap([RRType.a, RRType.rrsig, RRType.nsec]), [0, 6, 0x40, 0, 0, 0, 0, 0x03])
        XCTAssertEqual(ZoneSigner.typeBitmap([RRType.nsec, 128]).count, 2 + 17, "NXNAME is bit 128 of window 0")
        XCTAssertEqual(ZoneSigner.typeBitmap([257]), [1, 1, 0x40])
    }
}
