import Foundation
import Synchronization
import XCTest
@testable import LodestarGeo
import LodestarTopology

/// Shared helpers for the LodestarGeo tests.
enum GeoTestSupport {
    /// The package root, found from this file's path (Tests/LodestarGeoTests/<file>).
    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    static let sampleCSV = repoRoot.appendingPathComponent("GeoData/lodestar-sample.csv")
    static let sampleMMDB = repoRoot.appendingPathComponent("GeoData/lodestar-sample.mmdb")
    static let sampleEpoch: UInt64 = 1_764_028_800
    /// What `lodestar geo compile` writes for this CSV (so the CLI reproduces the committed file).
    static let sampleDescription = "Lodestar GeoIP database compiled from lodestar-sample.csv"

    /// Builds the sample database from the committed CSV as
    /// `lodestar geo compile --build-epoch 1764028800 GeoData/lodestar-sample.csv GeoData/lodestar-sample.mmdb` does.
    static func buildSample() throws -> [UInt8] {
        let text = try String(contentsOf: sampleCSV, encoding: .utf8)
        let records = try GeoCSV.parse(text, file: "GeoData/lodestar-sample.csv")
        return try MMDBWriter.build(records: records, description: sampleDescription, buildEpoch: sampleEpoch)
    }

    /// Temporary directories made by `temporaryFile`, removed by `removeTemporaryFiles`.
    static let temporaryDirectories = Mutex<[URL]>([])

    /// Writes `bytes` to a fresh temporary file and returns its path.
    static func temporaryFile(_ bytes: [UInt8], name: String = "test.mmdb") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-geo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        temporaryDirectories.withLock { $0.append(dir) }
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// Deletes every file `temporaryFile` wrote (call from `tearDown`).
    static func removeTemporaryFiles() {
        let dirs = temporaryDirectories.withLock { dirs in
            defer { dirs.removeAll() }
            return dirs
        }
        for dir in dirs { try? FileManager.default.removeItem(at: dir) }
    }

    /// Opens a database built from `records`.
    static func open(_ records: [GeoRecord], ipVersion: Int = 6, recordSize: Int? = nil) throws -> GeoDatabase {
        let bytes = try MMDBWriter.build(records: records, databaseType: "Lodestar-Test", description: "test",
                                         buildEpoch: 1_700_000_000, ipVersion: ipVersion, recordSize: recordSize)
        return try GeoDatabase(path: try temporaryFile(bytes))
    }

    static func record(_ cidr: String, _ lat: Double, _ lon: Double, _ country: String, _ continent: String,
                       _ city: String? = nil) -> GeoRecord {
        guard let prefix = IPPrefix(cidr) else { preconditionFailure("bad test CIDR \(cidr)") }
        return GeoRecord(prefix: prefix, latitude: lat, longitude: lon, country: country, continent: continent,
                         city: city)
    }

    static func ip(_ text: String) -> IPAddress {
        guard let a = IPAddress(text) else { preconditionFailure("bad test address \(text)") }
        return a
    }

    /// Runs Debian's `mmdblookup --file F --ip IP path...`; nil when the tool is not installed.
    static func mmdblookup(file: String, ip: String, path: [String]) throws -> (status: Int32, output: String)? {
        let tool = "/usr/bin/mmdblookup"
        guard FileManager.default.isExecutableFile(atPath: tool) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["--file", file, "--ip", ip] + path
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

}

final class MMDBWriterTests: XCTestCase {
    typealias S = GeoTestSupport

    override func tearDown() {
        S.removeTemporaryFiles()
        super.tearDown()
    }

    let records: [GeoRecord] = [
        S.record("8.8.8.0/24", 37.39, -122.08, "US", "NA", "Mountain View"),
        S.record("85.214.0.0/16", 52.52, 13.40, "DE", "EU", "Berlin"),
        S.record("133.0.0.0/8", 35.68, 139.69, "JP", "AS"),
        S.record("2404:6800::/32", 1.35, 103.82, "SG", "AS", "Singapore"),
        S.record("2a00:1450::/29", 53.35, -6.26, "IE", "EU", "Dublin"),
    ]

    func testRoundTripThroughLibmaxminddb() throws {
        let db = try S.open(records)
        let google = db.lookup(S.ip("8.8.8.8"))
        XCTAssertEqual(google.location, GeoLocation(latitude: 37.39, longitude: -122.08, country: "US",
                                                    continent: "NA", city: "Mountain View"))
        XCTAssertEqual(google.prefixLength, 24)

        let berlin = db.lookup(S.ip("85.214.1.1"))
        XCTAssertEqual(berlin.location?.city, "Berlin")
        XCTAssertEqual(berlin.prefixLength, 16)

        let tokyo = db.lookup(S.ip("133.200.3.4"))
        XCTAssertEqual(tokyo.location, GeoLocation(latitude: 35.68, longitude: 139.69, country: "JP", continent: "AS"))
        XCTAssertNil(tokyo.location?.city)
        XCTAssertEqual(tokyo.prefixLength, 8)

        let singapore = db.lookup(S.ip("2404:6800:4003:c00::64"))
        XCTAssertEqual(singapore.location?.country, "SG")
        XCTAssertEqual(singapore.prefixLength, 32)

        let dublin = db.lookup(S.ip("2a00:1457:ffff::1"))
        XCTAssertEqual(dublin.location?.city, "Dublin")
        XCTAssertEqual(dublin.prefixLength, 29)
    }

    func testIPv4MappedAddressesUseTheIPv4Subtree() throws {
        let db = try S.open(records)
        let mapped = db.lookup(S.ip("::ffff:8.8.8.8"))
        XCTAssertEqual(mapped.location, db.lookup(S.ip("8.8.8.8")).location)
        XCTAssertEqual(mapped.prefixLength, 96 + 24)
        XCTAssertEqual(db.lookup(S.ip("::ffff:85.214.9.9")).location?.city, "Berlin")
        XCTAssertNil(db.lookup(S.ip("::ffff:192.0.2.1")).location)
        // IPv4-compatible ::a.b.c.d sits on the IPv4 subtree itself.
        XCTAssertEqual(db.lookup(S.ip("::8.8.8.8")).location?.city, "Mountain View")
    }

    func testIPv4MappedRecordIsWrittenAsIPv4() throws {
        let db = try S.open([S.record("::ffff:10.1.0.0/112", 10, 20, "US", "NA", "Mapped")])
        let lookup = db.lookup(S.ip("10.1.2.3"))
        XCTAssertEqual(lookup.location?.city, "Mapped")
        XCTAssertEqual(lookup.prefixLength, 16)
    }

    func testMmdblookupReadsWriterOutput() throws {
        let bytes = try MMDBWriter.build(records: records, description: "mmdblookup check", buildEpoch: 1_700_000_000)
        let file = try S.temporaryFile(bytes)
        let cases: [(ip: String, path: [String], expected: String)] = [
            ("8.8.8.8", ["location", "latitude"], "37.390000 <double>"),
            ("8.8.8.8", ["location", "longitude"], "-122.080000 <double>"),
            ("::ffff:8.8.8.8", ["location", "latitude"], "37.390000 <double>"),
            ("85.214.1.1", ["city", "names", "en"], "\"Berlin\" <utf8_string>"),
            ("2404:6800::1", ["country", "iso_code"], "\"SG\" <utf8_string>"),
            ("2a00:1450::1", ["continent", "code"], "\"EU\" <utf8_string>"),
        ]
        for c in cases {
            guard let run = try S.mmdblookup(file: file, ip: c.ip, path: c.path) else {
                throw XCTSkip("mmdblookup is not installed")
            }
            XCTAssertEqual(run.status, 0, run.output)
            XCTAssertTrue(run.output.contains(c.expected), "\(c.ip) \(c.path): \(run.output)")
        }
        guard let unknown = try S.mmdblookup(file: file, ip: "192.0.2.1", path: []) else { return }
        XCTAssertTrue(unknown.output.contains("Could not find an entry"), unknown.output)
    }

    func testMoreSpecificPrefixWinsInEitherOrder() throws {
        let wide = S.record("10.0.0.0/8", 1, 1, "US", "NA", "Wide")
        let narrow = S.record("10.1.2.0/24", 2, 2, "DE", "EU", "Narrow")
        let middle = S.record("10.1.0.0/16", 3, 3, "FR", "EU", "Middle")
        let v6wide = S.record("2001:db8::/32", 4, 4, "JP", "AS", "Wide6")
        let v6narrow = S.record("2001:db8:1::/48", 5, 5, "AU", "OC", "Narrow6")
        let all = [wide, narrow, middle, v6wide, v6narrow]
        var outputs = Set<[UInt8]>()
        for order in [all, all.reversed(), [narrow, v6wide, wide, v6narrow, middle]] {
            let bytes = try MMDBWriter.build(records: order, description: "overlap", buildEpoch: 1)
            outputs.insert(bytes)
            let db = try GeoDatabase(path: try S.temporaryFile(bytes))
            XCTAssertEqual(db.lookup(S.ip("10.1.2.3")).location?.city, "Narrow")
            XCTAssertEqual(db.lookup(S.ip("10.1.2.3")).prefixLength, 24)
            XCTAssertEqual(db.lookup(S.ip("10.1.3.3")).location?.city, "Middle")
            XCTAssertEqual(db.lookup(S.ip("10.200.0.1")).location?.city, "Wide")
            // Outside the /16 but inside the /8: the answer holds for the sibling subtree of the path to 10.1/16.
            XCTAssertEqual(db.lookup(S.ip("10.200.0.1")).prefixLength, 9)
            XCTAssertEqual(db.lookup(S.ip("10.0.0.1")).prefixLength, 16)
            XCTAssertEqual(db.lookup(S.ip("2001:db8:1::1")).location?.city, "Narrow6")
            XCTAssertEqual(db.lookup(S.ip("2001:db8:2::1")).location?.city, "Wide6")
            XCTAssertNil(db.lookup(S.ip("11.0.0.1")).location)
        }
        XCTAssertEqual(outputs.count, 1, "output must not depend on input order")
    }

    func testIdenticalDataRecordsAreStoredOnce() throws {
        let a = S.record("10.0.0.0/24", 1, 2, "US", "NA", "Dedupeville")
        var b = a
        b.prefix = IPPrefix("172.16.0.0/12") ?? b.prefix
        var c = a
        c.prefix = IPPrefix("2001:4860::/32") ?? c.prefix
        let bytes = try MMDBWriter.build(records: [a, b, c], description: "dedupe", buildEpoch: 1)
        XCTAssertEqual(occurrences(of: Array("Dedupeville".utf8), in: bytes), 1)
        let db = try GeoDatabase(path: try S.temporaryFile(bytes))
        XCTAssertEqual(db.lookup(S.ip("10.0.0.9")).location?.city, "Dedupeville")
        XCTAssertEqual(db.lookup(S.ip("172.31.0.1")).location?.city, "Dedupeville")
        XCTAssertEqual(db.lookup(S.ip("2001:4860::1")).location?.city, "Dedupeville")
        // The same network listed twice with identical data is fine.
        XCTAssertNoThrow(try MMDBWriter.build(records: [a, a], description: "dup", buildEpoch: 1))
    }

    func testLayoutSeparatorAndMetadata() throws {
        let bytes = try MMDBWriter.build(records: records, databaseType: "Lodestar-City", description: "layout",
                                         buildEpoch: 1_764_028_800)
        let db = try GeoDatabase(path: try S.temporaryFile(bytes))
        let md = db.metadata
        XCTAssertEqual(md.databaseType, "Lodestar-City")
        XCTAssertEqual(md.ipVersion, 6)
        XCTAssertEqual(md.recordSize, 24)
        XCTAssertEqual(md.buildEpoch, 1_764_028_800)
        XCTAssertEqual(md.description, "layout")
        XCTAssertEqual(md.languages, ["en"])
        XCTAssertEqual(md.binaryFormatMajorVersion, 2)
        XCTAssertEqual(md.binaryFormatMinorVersion, 0)
        let treeSize = md.nodeCount * md.recordSize * 2 / 8
        XCTAssertGreaterThan(bytes.count, treeSize + 16)
        XCTAssertEqual(Array(bytes[treeSize..<(treeSize + 16)]), [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(occurrences(of: MMDBWriter.metadataMarker, in: bytes), 1)
    }

    func testEveryRecordSizeRoundTrips() throws {
        for size in [24, 28, 32] {
            let db = try S.open(records, recordSize: size)
            XCTAssertEqual(db.metadata.recordSize, size)
            XCTAssertEqual(db.lookup(S.ip("8.8.8.8")).location?.city, "Mountain View", "record size \(size)")
            XCTAssertEqual(db.lookup(S.ip("8.8.8.8")).prefixLength, 24)
            XCTAssertEqual(db.lookup(S.ip("2a00:1450::1")).location?.city, "Dublin", "record size \(size)")
            XCTAssertEqual(db.lookup(S.ip("::ffff:85.214.0.1")).location?.city, "Berlin", "record size \(size)")
            XCTAssertNil(db.lookup(S.ip("192.0.2.1")).location)
        }
        XCTAssertThrowsError(try S.open(records, recordSize: 20)) { error in
            XCTAssertEqual(error as? MMDBWriterError, .unsupportedRecordSize(20))
        }
    }

    func testTwentyEightBitRecordsSplitTheMiddleNibble() throws {
        // With 28-bit records, values at or above 2^24 use the shared middle byte; force such values by
        // making the data section large (one 70,000-byte city name per record).
        let long = String(repeating: "x", count: 70_000)
        var big = [GeoRecord]()
        for i in 0..<250 {
            big.append(S.record("10.\(i).0.0/16", 1, 1, "US", "NA", long + String(i)))
        }
        let bytes = try MMDBWriter.build(records: big, description: "big", buildEpoch: 1)
        let db = try GeoDatabase(path: try S.temporaryFile(bytes))
        XCTAssertEqual(db.metadata.recordSize, 28)
        XCTAssertEqual(db.lookup(S.ip("10.249.1.1")).location?.city, long + "249")
        XCTAssertEqual(db.lookup(S.ip("10.0.1.1")).location?.city, long + "0")
        XCTAssertEqual(db.lookup(S.ip("10.128.1.1")).location?.city, long + "128")
    }

    func testIPv4OnlyDatabase() throws {
        let v4 = records.filter { $0.prefix.address.isIPv4 }
        let db = try S.open(v4, ipVersion: 4)
        XCTAssertEqual(db.metadata.ipVersion, 4)
        XCTAssertEqual(db.lookup(S.ip("8.8.8.8")).location?.city, "Mountain View")
        XCTAssertEqual(db.lookup(S.ip("8.8.8.8")).prefixLength, 24)
        XCTAssertEqual(db.lookup(S.ip("133.1.1.1")).prefixLength, 8)
        XCTAssertEqual(db.lookup(S.ip("2404:6800::1")), GeoLookup(location: nil, prefixLength: 0))
        XCTAssertEqual(db.lookup(S.ip("::ffff:8.8.8.8")), GeoLookup(location: nil, prefixLength: 0))
        XCTAssertThrowsError(try S.open(records, ipVersion: 4)) { error in
            XCTAssertEqual(error as? MMDBWriterError, .ipv6InIPv4Database(IPPrefix("2404:6800::/32") ?? records[0].prefix))
        }
    }

    func testEmptyDatabaseOpens() throws {
        let db = try S.open([])
        XCTAssertEqual(db.lookup(S.ip("8.8.8.8")), GeoLookup(location: nil, prefixLength: 0))
        XCTAssertNil(db.lookup(S.ip("2001:4860::1")).location)
        // 0x2001 starts 001: the tree (only ::/80 paths) has nothing right of bit 2.
        XCTAssertEqual(db.lookup(S.ip("2001:4860::1")).prefixLength, 3)
        let v4 = try S.open([], ipVersion: 4)
        // A lone root whose records are both empty: the empty network is 0.0.0.0/1.
        XCTAssertEqual(v4.lookup(S.ip("8.8.8.8")), GeoLookup(location: nil, prefixLength: 1))
    }

    func testDefaultRoutesAreAllowedWhereRepresentable() throws {
        let db = try S.open([S.record("0.0.0.0/0", 1, 1, "US", "NA", "Anywhere"),
                             S.record("2000::/3", 2, 2, "DE", "EU", "Global6")])
        XCTAssertEqual(db.lookup(S.ip("203.0.113.1")).location?.city, "Anywhere")
        XCTAssertEqual(db.lookup(S.ip("203.0.113.1")).prefixLength, 0)
        XCTAssertEqual(db.lookup(S.ip("::ffff:203.0.113.1")).location?.city, "Anywhere")
        XCTAssertEqual(db.lookup(S.ip("2a00::1")).location?.city, "Global6")
        XCTAssertEqual(db.lookup(S.ip("2a00::1")).prefixLength, 3)
        XCTAssertNil(db.lookup(S.ip("fe80::1")).location)
    }

    func testImpossibleInputThrows() {
        func expect(_ records: [GeoRecord], epoch: UInt64 = 1, _ expected: MMDBWriterError,
                    file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try MMDBWriter.build(records: records, description: "x", buildEpoch: epoch),
                                 file: file, line: line) { error in
                XCTAssertEqual(error as? MMDBWriterError, expected, file: file, line: line)
                XCTAssertFalse(String(describing: error).isEmpty)
            }
        }
        let a = S.record("10.0.0.0/8", 1, 1, "US", "NA", "A")
        let b = S.record("10.0.0.0/8", 2, 2, "US", "NA", "B")
        expect([a, b], .conflictingRecords(a.prefix))
        expect([a], epoch: 0, .invalidBuildEpoch)
        let bad = S.record("10.0.0.0/8", .nan, 1, "US", "NA")
        expect([bad], .invalidCoordinates(bad.prefix))
        let far = S.record("10.0.0.0/8", 1, 181, "US", "NA")
        expect([far], .invalidCoordinates(far.prefix))
        let all6 = S.record("::/0", 1, 1, "US", "NA")
        expect([all6], .overlapsIPv4Space(all6.prefix))
        let compat = S.record("::1/128", 1, 1, "US", "NA")
        expect([compat], .overlapsIPv4Space(compat.prefix))
        let mapped = S.record("::ffff:0:0/95", 1, 1, "US", "NA")
        expect([mapped], .overlapsIPv4Space(mapped.prefix))
        XCTAssertThrowsError(try MMDBWriter.build(records: [], databaseType: "x", description: "x", buildEpoch: 1,
                                                  ipVersion: 5, recordSize: nil))
        let huge = S.record("10.0.0.0/8", 1, 1, "US", "NA", String(repeating: "y", count: MMDBEncoder.maximumSize + 1))
        expect([huge], .valueTooLarge(MMDBEncoder.maximumSize + 1))
        XCTAssertThrowsError(try MMDBWriter.build(records: [], description: String(repeating: "d", count: 140_000),
                                                  buildEpoch: 1)) { error in
            guard case .metadataTooLarge = error as? MMDBWriterError else { return XCTFail("\(error)") }
        }
    }

    func testLongStringsUseExtendedSizeEncodings() throws {
        let lengths = [0, 1, 28, 29, 30, 284, 285, 286, 65_820, 65_821, 65_822, 100_000]
        var recs = [GeoRecord]()
        for (i, n) in lengths.enumerated() {
            recs.append(S.record("10.\(i).0.0/16", 1, 1, "US", "NA", String(repeating: "c", count: n)))
        }
        let db = try S.open(recs)
        for (i, n) in lengths.enumerated() {
            let city = db.lookup(S.ip("10.\(i).0.1")).location?.city
            // An empty city name reads back as no city.
            XCTAssertEqual(city, n == 0 ? nil : String(repeating: "c", count: n), "length \(n)")
        }
    }

    func testEncoderControlBytes() throws {
        func encoded(_ body: (inout MMDBEncoder) throws -> Void) rethrows -> [UInt8] {
            var e = MMDBEncoder()
            try body(&e)
            return e.bytes
        }
        XCTAssertEqual(try encoded { try $0.string("en") }, [0x42, 0x65, 0x6E])
        XCTAssertEqual(try encoded { try $0.control(type: 2, size: 28) }, [0x5C])
        XCTAssertEqual(try encoded { try $0.control(type: 2, size: 80) }, [0x5D, 0x33])          // spec example
        XCTAssertEqual(try encoded { try $0.control(type: 2, size: 13_392) }, [0x5E, 0x33, 0x33]) // spec example
        XCTAssertEqual(try encoded { try $0.control(type: 2, size: 3_421_264) }, [0x5F, 0x33, 0x33, 0x33])
        XCTAssertEqual(try encoded { try $0.arrayHeader(count: 1) }, [0x01, 0x04])
        XCTAssertEqual(try encoded { try $0.control(type: 11, size: 300) }, [0x1E, 0x04, 0x00, 0x0F])
        XCTAssertEqual(try encoded { try $0.mapHeader(count: 2) }, [0xE2])
        XCTAssertEqual(encoded { $0.uint16(0) }, [0xA0])
        XCTAssertEqual(encoded { $0.uint16(2) }, [0xA1, 0x02])
        XCTAssertEqual(encoded { $0.uint16(300) }, [0xA2, 0x01, 0x2C])
        XCTAssertEqual(encoded { $0.uint32(0x0102_0304) }, [0xC4, 0x01, 0x02, 0x03, 0x04])
        XCTAssertEqual(encoded { $0.uint64(1_764_028_800) }, [0x04, 0x02, 0x69, 0x24, 0xF1, 0x80])
        XCTAssertEqual(encoded { $0.uint64(.max) }, [0x08, 0x02] + [UInt8](repeating: 0xFF, count: 8))
        XCTAssertEqual(encoded { $0.double(1.5) }, [0x68, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0])
        XCTAssertThrowsError(try encoded { try $0.control(type: 2, size: 16_843_037) })
    }

    private func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> Int {
        guard !needle.isEmpty, haystack.count >= needle.count else { return 0 }
        var count = 0
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { count += 1 }
        }
        return count
    }
}
