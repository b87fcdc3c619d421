import Foundation
import Synchronization
import XCTest
@testable import LodestarGeo
import LodestarTopology

final class GeoDatabaseTests: XCTestCase {
    typealias S = GeoTestSupport

    override func tearDown() {
        S.removeTemporaryFiles()
        super.tearDown()
    }

    // MARK: Opening

    func testMissingFileThrowsWithPath() {
        let path = "/nonexistent/lodestar/geo-\(UUID().uuidString).mmdb"
        XCTAssertThrowsError(try GeoDatabase(path: path)) { error in
            guard let e = error as? GeoDatabaseError else { return XCTFail("unexpected \(error)") }
            XCTAssertEqual(e.path, path)
            XCTAssertTrue(e.description.contains(path), e.description)
            XCTAssertTrue(e.description.contains("No such file"), e.description)
        }
    }

    func testCorruptAndTruncatedFilesThrow() throws {
        let sample = try S.buildSample()
        var random = FastRandom(seed: 42)
        let garbage = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &random) }
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("garbage", garbage),
            ("first half", Array(sample.prefix(sample.count / 2))),
            ("without last byte of metadata", Array(sample.dropLast(40))),
            ("metadata only", Array(sample.suffix(300))),
            ("marker only", MMDBWriter.metadataMarker),
        ]
        for (name, bytes) in cases {
            let path = try S.temporaryFile(bytes, name: "\(name.replacingOccurrences(of: " ", with: "-")).mmdb")
            XCTAssertThrowsError(try GeoDatabase(path: path), name) { error in
                XCTAssertTrue(String(describing: error).contains(path), "\(name): \(error)")
            }
        }
    }

    func testCorruptTreeOrDataGivesNoLocationNotACrash() throws {
        let bytes = try S.buildSample()
        let db = try GeoDatabase(path: try S.temporaryFile(bytes))
        let treeSize = db.metadata.nodeCount * db.metadata.recordSize / 4
        let probes = ["8.8.8.8", "127.0.1.1", "2404:6800::1", "::ffff:85.214.1.1", "192.0.2.1"].map(S.ip)

        // Every record points past the end of the file.
        var badTree = bytes
        for i in 0..<treeSize { badTree[i] = 0xFF }
        let treeDB = try GeoDatabase(path: try S.temporaryFile(badTree))
        for probe in probes {
            XCTAssertEqual(treeDB.lookup(probe), GeoLookup(location: nil, prefixLength: 0), "\(probe)")
        }

        // Data section overwritten with noise (metadata left intact).
        let dataStart = treeSize + 16
        guard let markerStart = lastIndex(of: MMDBWriter.metadataMarker, in: bytes) else {
            return XCTFail("no metadata marker")
        }
        for fill in [UInt8(0xFF), 0x00, 0x20] {
            var badData = bytes
            for i in dataStart..<markerStart { badData[i] = fill }
            let dataDB = try GeoDatabase(path: try S.temporaryFile(badData))
            for probe in probes { XCTAssertNil(dataDB.lookup(probe).location, "\(probe) fill \(fill)") }
        }
        var random = FastRandom(seed: 7)
        for _ in 0..<20 {
            var noisy = bytes
            for i in dataStart..<markerStart { noisy[i] = UInt8.random(in: 0...255, using: &random) }
            let noisyDB = try GeoDatabase(path: try S.temporaryFile(noisy))
            for probe in probes { _ = noisyDB.lookup(probe) }
        }
    }

    // MARK: Record layouts

    /// GeoLite2 / DB-IP variants: registered_country fallback, float coordinates, extra keys, records without a
    /// location, wrong types and non-map records.
    func testRecordLayoutVariants() throws {
        func payload(_ body: (inout MMDBEncoder) throws -> Void) rethrows -> [UInt8] {
            var e = MMDBEncoder()
            try body(&e)
            return e.bytes
        }
        func location(_ e: inout MMDBEncoder, _ lat: Double, _ lon: Double) throws {
            try e.string("location"); try e.mapHeader(count: 3)
            try e.string("accuracy_radius"); e.uint16(1000)
            try e.string("latitude"); e.double(lat)
            try e.string("longitude"); e.double(lon)
        }
        let entries: [(prefix: IPPrefix, payload: [UInt8])] = try [
            // registered_country only, plus keys Lodestar ignores.
            (XCTUnwrap(IPPrefix("10.1.0.0/16")), payload { e in
                try e.mapHeader(count: 3)
                try e.string("continent"); try e.mapHeader(count: 2)
                try e.string("code"); try e.string("EU")
                try e.string("geoname_id"); e.uint32(6_255_148)
                try location(&e, 48.85, 2.35)
                try e.string("registered_country"); try e.mapHeader(count: 1)
                try e.string("iso_code"); try e.string("FR")
            }),
            // country wins over registered_country; float coordinates.
            (XCTUnwrap(IPPrefix("10.2.0.0/16")), payload { e in
                try e.mapHeader(count: 3)
                try e.string("country"); try e.mapHeader(count: 1); try e.string("iso_code"); try e.string("GB")
                try e.string("registered_country"); try e.mapHeader(count: 1); try e.string("iso_code"); try e.string("US")
                try e.string("location"); try e.mapHeader(count: 2)
                try e.string("latitude"); e.float(51.5)
                try e.string("longitude"); e.float(-0.125)
            }),
            // A country-level record without coordinates (e.g. an anycast or satellite network).
            (XCTUnwrap(IPPrefix("10.3.0.0/16")), payload { e in
                try e.mapHeader(count: 1)
                try e.string("country"); try e.mapHeader(count: 1); try e.string("iso_code"); try e.string("US")
            }),
            // Latitude of the wrong type.
            (XCTUnwrap(IPPrefix("10.4.0.0/16")), payload { e in
                try e.mapHeader(count: 1)
                try e.string("location"); try e.mapHeader(count: 2)
                try e.string("latitude"); try e.string("48.1")
                try e.string("longitude"); e.double(11.5)
            }),
            // Not a map at all.
            (XCTUnwrap(IPPrefix("10.5.0.0/16")), payload { e in try e.string("just a string") }),
            // Out-of-range coordinates.
            (XCTUnwrap(IPPrefix("10.6.0.0/16")), payload { e in try e.mapHeader(count: 1); try location(&e, 123, 10) }),
            // Only latitude.
            (XCTUnwrap(IPPrefix("2001:4860::/32")), payload { e in
                try e.mapHeader(count: 1)
                try e.string("location"); try e.mapHeader(count: 1); try e.string("latitude"); e.double(1)
            }),
        ]
        let bytes = try MMDBWriter.build(entries: entries, databaseType: "GeoLite2-City", description: "layouts",
                                         buildEpoch: 1, ipVersion: 6, recordSize: nil)
        let db = try GeoDatabase(path: try S.temporaryFile(bytes))
        XCTAssertEqual(db.lookup(S.ip("10.1.2.3")).location,
                       GeoLocation(latitude: 48.85, longitude: 2.35, country: "FR", continent: "EU"))
        XCTAssertEqual(db.lookup(S.ip("10.2.2.3")).location,
                       GeoLocation(latitude: 51.5, longitude: -0.125, country: "GB"))
        for missing in ["10.3.0.1", "10.4.0.1", "10.5.0.1", "10.6.0.1", "2001:4860::1"] {
            let result = db.lookup(S.ip(missing))
            XCTAssertNil(result.location, missing)
            XCTAssertEqual(result.prefixLength, S.ip(missing).isIPv4 ? 16 : 32, missing)
        }
    }

    // MARK: The committed sample

    func testCommittedSampleMatchesAFreshBuildOfTheCSV() throws {
        let fresh = try S.buildSample()
        if ProcessInfo.processInfo.environment["LODESTAR_WRITE_GEO_SAMPLE"] == "1" {
            try Data(fresh).write(to: S.sampleMMDB)
        }
        let committed = try [UInt8](Data(contentsOf: S.sampleMMDB))
        XCTAssertEqual(committed.count, fresh.count)
        XCTAssertTrue(committed == fresh,
                      "GeoData/lodestar-sample.mmdb is stale: run `swift run lodestar geo compile GeoData/lodestar-sample.csv GeoData/lodestar-sample.mmdb`")
        XCTAssertEqual(try S.buildSample(), fresh, "builds must be deterministic")
    }

    func testSampleDatabaseLookups() throws {
        let db = try GeoDatabase(path: S.sampleMMDB.path)
        XCTAssertEqual(db.metadata.databaseType, "Lodestar-City")
        XCTAssertEqual(db.metadata.buildEpoch, S.sampleEpoch)
        XCTAssertEqual(db.metadata.ipVersion, 6)
        XCTAssertEqual(db.metadata.description, S.sampleDescription)

        let ashburn = GeoLocation(latitude: 39.04, longitude: -77.49, country: "US", continent: "NA", city: "Ashburn")
        let frankfurt = GeoLocation(latitude: 50.11, longitude: 8.68, country: "DE", continent: "EU", city: "Frankfurt")
        let singapore = GeoLocation(latitude: 1.35, longitude: 103.82, country: "SG", continent: "AS", city: "Singapore")
        XCTAssertEqual(db.lookup(S.ip("127.0.1.1")), GeoLookup(location: ashburn, prefixLength: 24))
        XCTAssertEqual(db.lookup(S.ip("127.0.2.1")), GeoLookup(location: frankfurt, prefixLength: 24))
        XCTAssertEqual(db.lookup(S.ip("127.0.3.1")), GeoLookup(location: singapore, prefixLength: 24))
        XCTAssertEqual(db.lookup(S.ip("198.18.1.7")).location, ashburn)
        XCTAssertEqual(db.lookup(S.ip("198.18.2.7")).location, frankfurt)
        XCTAssertEqual(db.lookup(S.ip("198.18.3.7")).location, singapore)

        XCTAssertEqual(db.lookup(S.ip("8.8.8.8")).prefixLength, 24)
        XCTAssertEqual(db.lookup(S.ip("8.8.8.8")).location?.city, "Mountain View")
        XCTAssertEqual(db.lookup(S.ip("85.214.1.1")).prefixLength, 16)
        XCTAssertEqual(db.lookup(S.ip("85.214.1.1")).location?.city, "Berlin")
        XCTAssertEqual(db.lookup(S.ip("133.5.6.7")).prefixLength, 8)
        XCTAssertEqual(db.lookup(S.ip("4.2.2.2")).location?.city, "Denver")
        XCTAssertEqual(db.lookup(S.ip("4.100.0.1")).location?.city, "Chicago")
        XCTAssertEqual(db.lookup(S.ip("62.0.1.1")).location?.city, nil)
        XCTAssertEqual(db.lookup(S.ip("62.0.1.1")).location?.country, "SE")
        XCTAssertEqual(db.lookup(S.ip("2404:6800:4003::1")).prefixLength, 32)
        XCTAssertEqual(db.lookup(S.ip("2404:6800:4003::1")).location, singapore)
        XCTAssertEqual(db.lookup(S.ip("2a00:1450:4001:80b::200e")).location?.city, "Frankfurt")
        XCTAssertEqual(db.lookup(S.ip("2a00:1450:4001:80b::200e")).prefixLength, 48)
        XCTAssertEqual(db.lookup(S.ip("2a00:1454::1")).location?.city, "Dublin")

        let mapped = db.lookup(S.ip("::ffff:8.8.8.8"))
        XCTAssertEqual(mapped.location?.city, "Mountain View")
        XCTAssertEqual(mapped.prefixLength, 120)

        for unknown in ["192.0.2.1", "198.51.100.1", "203.0.113.1", "2001:db8::1", "127.0.0.1"] {
            let result = db.lookup(S.ip(unknown))
            XCTAssertNil(result.location, unknown)
            XCTAssertTrue((1...S.ip(unknown).bitWidth).contains(result.prefixLength),
                          "\(unknown): \(result.prefixLength)")
        }
        XCTAssertEqual(db.lookup(S.ip("192.0.2.1")).prefixLength, 6)
    }

    /// Every CSV row, and thousands of pseudo-random addresses, answer as the most specific CSV row containing them.
    func testSampleAgreesWithTheCSVEverywhere() throws {
        let text = try String(contentsOf: S.sampleCSV, encoding: .utf8)
        let rows = try GeoCSV.parse(text, file: "lodestar-sample.csv")
        let db = try GeoDatabase(path: S.sampleMMDB.path)

        func expected(_ address: IPAddress) -> GeoRecord? {
            rows.filter { $0.prefix.contains(address) }.max { $0.prefix.length < $1.prefix.length }
        }
        func check(_ address: IPAddress, file: StaticString = #filePath, line: UInt = #line) {
            let result = db.lookup(address)
            guard let row = expected(address) else {
                XCTAssertNil(result.location, "\(address)", file: file, line: line)
                return
            }
            XCTAssertEqual(result.location, location(row), "\(address)", file: file, line: line)
            XCTAssertGreaterThanOrEqual(result.prefixLength, row.prefix.length, "\(address)", file: file, line: line)
        }

        for row in rows {
            let network = row.prefix.address
            check(network)
            check(lastAddress(row.prefix))
            let nested = rows.contains { $0 != row && $0.prefix.length > row.prefix.length && row.prefix.contains($0.prefix.address) }
            if !nested {
                XCTAssertEqual(db.lookup(network).prefixLength, row.prefix.length, "\(row.prefix)")
                XCTAssertEqual(db.lookup(lastAddress(row.prefix)).prefixLength, row.prefix.length, "\(row.prefix)")
            }
        }

        var random = FastRandom(seed: 2026)
        for _ in 0..<3000 { check(.v4(UInt32.random(in: 0...UInt32.max, using: &random))) }
        for _ in 0..<3000 {
            // Mostly near listed IPv6 networks: keep a random listed /29../48 head, randomise the rest.
            let row = rows.filter { !$0.prefix.address.isIPv4 }.randomElement(using: &random)
            guard case .v6(let hi, _)? = row?.prefix.address else { continue }
            let keep = Int.random(in: 8...48, using: &random)
            let mask = UInt64.max << UInt64(64 - keep)
            check(.v6((hi & mask) | (UInt64.random(in: 0...UInt64.max, using: &random) & ~mask),
                      UInt64.random(in: 0...UInt64.max, using: &random)))
        }
    }

    // MARK: Threads and cache

    func testConcurrentLookupsMatchSerial() throws {
        let path = S.sampleMMDB.path
        var random = FastRandom(seed: 99)
        var addresses = [IPAddress]()
        let seeds = ["8.8.8.8", "127.0.1.9", "198.18.3.3", "85.214.77.1", "2404:6800::5", "::ffff:133.1.2.3",
                     "192.0.2.1", "2a00:1450:4001::1"].map(S.ip)
        for i in 0..<10_000 {
            if i % 3 == 0, let seed = seeds.randomElement(using: &random) {
                addresses.append(seed)
            } else if i % 3 == 1 {
                addresses.append(.v4(UInt32.random(in: 0...UInt32.max, using: &random)))
            } else {
                addresses.append(.v6(0x2000_0000_0000_0000 | UInt64.random(in: 0...(1 << 61), using: &random), 0))
            }
        }
        let serialDB = try GeoDatabase(path: path)
        let serial = addresses.map { serialDB.lookup($0) }

        let concurrentDB = try GeoDatabase(path: path)   // cold cache: threads race to fill it
        let mismatches = Mutex(0)
        let done = DispatchSemaphore(value: 0)
        let frozen = addresses
        for t in 0..<4 {
            let thread = Thread {
                var bad = 0
                // Each thread walks the list from a different starting point.
                for k in 0..<frozen.count {
                    let i = (k + t * 2_500) % frozen.count
                    if concurrentDB.lookup(frozen[i]) != serial[i] { bad += 1 }
                }
                mismatches.withLock { $0 += bad }
                done.signal()
            }
            thread.start()
        }
        for _ in 0..<4 { done.wait() }
        XCTAssertEqual(mismatches.withLock { $0 }, 0)
    }

    func testCacheHoldsOneEntryPerRecordAndAnswersStayTheSame() throws {
        let db = try GeoDatabase(path: S.sampleMMDB.path)
        let first = db.lookup(S.ip("8.8.8.8"))
        XCTAssertEqual(db.cachedRecordCount, 1)
        XCTAssertEqual(db.lookup(S.ip("8.8.8.8")), first)
        XCTAssertEqual(db.lookup(S.ip("8.8.8.200")), first)
        XCTAssertEqual(db.cachedRecordCount, 1)
        _ = db.lookup(S.ip("192.0.2.1"))   // not found: nothing to cache
        XCTAssertEqual(db.cachedRecordCount, 1)
        // 127.0.1.0/24 and 198.18.1.0/24 share one deduplicated data record, hence one cache entry.
        _ = db.lookup(S.ip("127.0.1.1"))
        _ = db.lookup(S.ip("198.18.1.1"))
        XCTAssertEqual(db.cachedRecordCount, 2)
    }

    // MARK: Helpers

    private func location(_ r: GeoRecord) -> GeoLocation {
        GeoLocation(latitude: r.latitude, longitude: r.longitude, country: r.country, continent: r.continent, city: r.city)
    }

    private func lastAddress(_ p: IPPrefix) -> IPAddress {
        switch p.address {
        case .v4(let v):
            return .v4(p.length == 0 ? .max : v | (UInt32.max >> UInt32(p.length)))
        case .v6(let hi, let lo):
            if p.length <= 64 { return .v6(p.length == 0 ? .max : hi | (UInt64.max >> UInt64(p.length)), .max) }
            return .v6(hi, lo | (UInt64.max >> UInt64(p.length - 64)))
        }
    }

    private func lastIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in stride(from: haystack.count - needle.count, through: 0, by: -1)
        where Array(haystack[start..<(start + needle.count)]) == needle {
            return start
        }
        return nil
    }
}
