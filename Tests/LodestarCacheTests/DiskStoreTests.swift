import Dispatch
import Foundation
@testable import LodestarCache
import LodestarTopology
import NIOCore
import Synchronization
import XCTest

/// A response whose body is `text`, with optional extra headers and kept request headers.
private func response(_ text: String, headers: HTTPFields = [], vary: HTTPFields = [], time: Int64 = 1000) -> CachedResponse {
    CachedResponse(
        status: 200, headers: headers, body: text.isEmpty ? [] : [ByteBuffer(string: text)], requestTime: time,
        responseTime: time, varyRequestHeaders: vary)
}

/// The body text of a stored response.
private func text(_ r: CachedResponse?) -> String? {
    guard let r else { return nil }
    var out = ""
    for var b in r.body { out += b.readString(length: b.readableBytes) ?? "" }
    return out
}

/// Name/value pairs of a field list (tuples are not Equatable).
private func pairs(_ fields: HTTPFields) -> [String] {
    fields.map { "\($0.name): \($0.value)" }
}

/// CRC-32 (IEEE), bitwise: lets tests craft files whose checksums are right but whose lengths lie.
private func crc32(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    }
    return ~c
}

/// Little-endian bytes of an integer.
private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
}

/// Tests for the disk tier of the shared cache: format, index rebuild, bounds, purges and corruption handling.
final class DiskStoreTests: XCTestCase {
    private var root = ""

    override func setUp() {
        super.setUp()
        var base = NSTemporaryDirectory()
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        var template = Array((base + "/lodestar-disk-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return false }
            return mkdtemp(base) != nil
        }
        XCTAssertTrue(made)
        root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    override func tearDown() {
        if !root.isEmpty { try? FileManager.default.removeItem(atPath: root) }
        super.tearDown()
    }

    /// The store's directory inside the test's temp directory.
    private var dir: String { root + "/cache" }

    /// Opens a store over `dir`, failing the test on error.
    private func open(capacity: Int = 1 << 20, maxObject: Int = 1 << 19) throws -> DiskStore {
        try DiskStore(directory: dir, capacityBytes: capacity, maxObjectBytes: maxObject)
    }

    /// Every entry under the two-hex subdirectories of `directory` (default: `dir`), with its size.
    private func files(in directory: String? = nil) -> [String: Int] {
        let dir = directory ?? self.dir
        var out: [String: Int] = [:]
        let fm = FileManager.default
        for sub in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where sub.utf8.count == 2 {
            for name in (try? fm.contentsOfDirectory(atPath: dir + "/" + sub)) ?? [] {
                let path = dir + "/" + sub + "/" + name
                let size = (try? fm.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
                out[path] = size
            }
        }
        return out
    }

    /// Asserts the index and the files agree: same count, bytes = sum of file sizes, within capacity.
    private func assertConsistent(_ store: DiskStore, file: StaticString = #filePath, line: UInt = #line) {
        let s = store.stats
        let onDisk = files()
        XCTAssertEqual(onDisk.count, s.entries, "files vs entries", file: file, line: line)
        XCTAssertEqual(onDisk.values.reduce(0, +), s.bytes, "file bytes vs stats", file: file, line: line)
        XCTAssertLessThanOrEqual(s.bytes, s.capacityBytes, file: file, line: line)
    }

    /// The path of the variant of `key` with no Vary.
    private func path(_ store: DiskStore, _ key: String) -> String {
        store.filePath(key: key, secondaryKey: "")
    }

    /// Reads a file's bytes.
    private func bytes(_ path: String) -> [UInt8] {
        (FileManager.default.contents(atPath: path)).map { [UInt8]($0) } ?? []
    }

    /// Writes bytes to a file, creating its directory.
    private func write(_ bytes: [UInt8], to path: String) {
        let parent = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
    }

    /// Sets a file's modification time.
    private func setMtime(_ path: String, _ seconds: Double) throws {
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSince1970: seconds)], ofItemAtPath: path)
    }

    // MARK: - Round trip, restart

    func testStoreLookupRoundTrip() throws {
        let store = try open()
        let headers: HTTPFields = [
            ("Content-Type", "text/plain"), ("Vary", "Accept-Encoding"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2"),
            ("X-Empty", ""), ("X-Ünïcode", "välue ✓"),
        ]
        let stored = CachedResponse(
            status: 203, headers: headers, body: [ByteBuffer(string: "hello, "), ByteBuffer(bytes: [0, 255, 10, 13])],
            requestTime: -5, responseTime: 1_700_000_000_123, varyRequestHeaders: [("Accept-Encoding", "gzip, br")])
        XCTAssertNil(store.lookup(key: "GET example.com/a", requestHeaders: []))
        XCTAssertTrue(store.store(key: "GET example.com/a", response: stored))
        let got = try XCTUnwrap(store.lookup(key: "GET example.com/a", requestHeaders: [("accept-encoding", "GZIP,br")]))
        XCTAssertEqual(got.status, 203)
        XCTAssertEqual(pairs(got.headers), pairs(headers))
        XCTAssertEqual(got.requestTime, -5)
        XCTAssertEqual(got.responseTime, 1_700_000_000_123)
        XCTAssertEqual(pairs(got.varyRequestHeaders), ["Accept-Encoding: gzip, br"])
        XCTAssertEqual(got.bodyBytes, 11)
        XCTAssertEqual(got.body.flatMap { Array($0.readableBytesView) }, Array("hello, ".utf8) + [0, 255, 10, 13])
        XCTAssertEqual(got.cost, stored.cost)
        XCTAssertNil(store.lookup(key: "GET example.com/a", requestHeaders: [("Accept-Encoding", "br")]))
        XCTAssertNil(store.lookup(key: "GET example.com/b", requestHeaders: []))
        let s = store.stats
        XCTAssertEqual(s.hits, 1)
        XCTAssertEqual(s.misses, 3)
        XCTAssertEqual(s.stores, 1)
        XCTAssertEqual(s.entries, 1)
        XCTAssertEqual(s.capacityBytes, 1 << 20)
        XCTAssertEqual(s.corruptDropped, 0)
        assertConsistent(store)
        let secondary = try XCTUnwrap(
            VaryKey.secondaryKey(vary: "Accept-Encoding", requestHeaders: [("Accept-Encoding", "gzip, br")]))
        let file = store.filePath(key: "GET example.com/a", secondaryKey: secondary)
        XCTAssertEqual(files().keys.sorted(), [file])
        XCTAssertTrue(file.hasPrefix(dir + "/"))
        let name = (file as NSString).lastPathComponent
        XCTAssertEqual(name.utf8.count, 32)
        XCTAssertEqual((file as NSString).deletingLastPathComponent, dir + "/" + String(name.prefix(2)))
    }

    func testEmptyBodyAndReplacementKeepOneFile() throws {
        let store = try open()
        XCTAssertTrue(store.store(key: "k", response: response("")))
        XCTAssertEqual(text(store.lookup(key: "k", requestHeaders: [])), "")
        XCTAssertEqual(store.lookup(key: "k", requestHeaders: [])?.body.count, 0)
        XCTAssertTrue(store.store(key: "k", response: response("second version", time: 2000)))
        XCTAssertEqual(text(store.lookup(key: "k", requestHeaders: [])), "second version")
        XCTAssertEqual(store.stats.entries, 1)
        XCTAssertEqual(store.stats.stores, 2)
        assertConsistent(store)
    }

    func testDirectoryCreatedWithPrivateMode() throws {
        let store = try DiskStore(directory: root + "/a/b/c", capacityBytes: 10_000, maxObjectBytes: 10_000)
        XCTAssertEqual(store.directory, root + "/a/b/c")
        let attributes = try FileManager.default.attributesOfItem(atPath: root + "/a/b/c")
        XCTAssertEqual((attributes[.posixPermissions] as? Int).map { $0 & 0o777 }, 0o700)
        XCTAssertEqual(attributes[.type] as? FileAttributeType, .typeDirectory)
    }

    func testSurvivesRestartWithVariantsApart() throws {
        let vary: HTTPFields = [("Vary", "Accept-Encoding")]
        do {
            let store = try open()
            XCTAssertTrue(store.store(key: "k", response: response("gz", headers: vary + [("Content-Encoding", "gzip")],
                                                                   vary: [("Accept-Encoding", "gzip")])))
            XCTAssertTrue(store.store(key: "k", response: response("plain", headers: vary, vary: [("Accept-Encoding", "identity")])))
            XCTAssertTrue(store.store(key: "other", response: response("o")))
            XCTAssertTrue(store.store(key: "star", response: response("s", headers: [("Vary", "*")])) == false)
        }
        let store = try open()
        XCTAssertEqual(store.stats.entries, 3)
        XCTAssertEqual(store.stats.corruptDropped, 0)
        assertConsistent(store)
        XCTAssertEqual(text(store.lookup(key: "k", requestHeaders: [("Accept-Encoding", "gzip")])), "gz")
        XCTAssertEqual(
            pairs(store.lookup(key: "k", requestHeaders: [("Accept-Encoding", "gzip")])?.headers ?? []),
            ["Vary: Accept-Encoding", "Content-Encoding: gzip"])
        XCTAssertEqual(text(store.lookup(key: "k", requestHeaders: [("Accept-Encoding", "identity")])), "plain")
        XCTAssertNil(store.lookup(key: "k", requestHeaders: [("Accept-Encoding", "br")]))
        XCTAssertNil(store.lookup(key: "k", requestHeaders: []))
        XCTAssertEqual(text(store.lookup(key: "other", requestHeaders: [("Accept-Encoding", "br")])), "o")
    }

    func testNewerResponseWinsWhenSeveralMatch() throws {
        let store = try open()
        XCTAssertTrue(store.store(key: "k", response: response("old", headers: [("Vary", "Accept")], vary: [("Accept", "a")], time: 10)))
        XCTAssertTrue(store.store(key: "k", response: response("new", headers: [("Vary", "Accept-Language")],
                                                               vary: [("Accept-Language", "en")], time: 20)))
        XCTAssertEqual(text(store.lookup(key: "k", requestHeaders: [("Accept", "a"), ("Accept-Language", "en")])), "new")
        XCTAssertEqual(text(store.lookup(key: "k", requestHeaders: [("Accept", "a")])), "old")
    }

    func testSecondStoreOnSameDirectoryRefusedUntilFirstIsGone() throws {
        var first: DiskStore? = try open()
        XCTAssertNotNil(first)
        XCTAssertThrowsError(try open()) { error in
            XCTAssertTrue("\(error)".contains(self.dir), "\(error)")
            XCTAssertTrue("\(error)".contains("in use"), "\(error)")
        }
        first = nil
        XCTAssertNoThrow(try open())
    }

    func testUncreatableDirectoryThrowsWithPathAndReason() throws {
        write([1, 2, 3], to: root + "/plainfile")
        XCTAssertThrowsError(try DiskStore(directory: root + "/plainfile/cache", capacityBytes: 1000, maxObjectBytes: 1000)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(self.root + "/plainfile"), text)
            XCTAssertTrue(text.contains("directory"), text)
            XCTAssertEqual((error as? DiskStoreError)?.code, ENOTDIR)
        }
        XCTAssertThrowsError(try DiskStore(directory: "", capacityBytes: 1000, maxObjectBytes: 1000))
    }

    // MARK: - Bounds and recency

    func testObjectOverMaxOrCapacityNotStored() throws {
        let big = response(String(repeating: "x", count: 2_000))
        let store = try open(capacity: 10_000, maxObject: big.cost - 1)
        XCTAssertFalse(store.store(key: "k", response: big))
        XCTAssertTrue(store.store(key: "k", response: response(String(repeating: "x", count: 1_000))))
        let small = try open2(capacity: big.cost - 1, maxObject: 100_000)
        XCTAssertFalse(small.store(key: "k", response: big))
        XCTAssertEqual(store.stats.entries, 1)
        XCTAssertEqual(store.stats.stores, 1)
        XCTAssertEqual(small.stats.entries, 0)
        XCTAssertEqual(small.stats.stores, 0)
        assertConsistent(store)
    }

    /// A store over a second directory inside the test's temp directory.
    private func open2(capacity: Int, maxObject: Int) throws -> DiskStore {
        try DiskStore(directory: root + "/second", capacityBytes: capacity, maxObjectBytes: maxObject)
    }

    func testLRUOrder() throws {
        let body = String(repeating: "b", count: 100)
        let probe = try open()
        XCTAssertTrue(probe.store(key: "P", response: response(body)))
        let unit = probe.stats.bytes
        XCTAssertEqual(probe.purge(key: "P"), 1)
        let store = try open2(capacity: unit * 3, maxObject: 10_000)
        for key in ["A", "B", "C"] { XCTAssertTrue(store.store(key: key, response: response(body))) }
        XCTAssertNotNil(store.lookup(key: "A", requestHeaders: []))
        XCTAssertTrue(store.store(key: "D", response: response(body)))
        XCTAssertNil(store.lookup(key: "B", requestHeaders: []))
        XCTAssertNotNil(store.lookup(key: "A", requestHeaders: []))
        XCTAssertTrue(store.store(key: "E", response: response(body)))
        XCTAssertNil(store.lookup(key: "C", requestHeaders: []))
        for key in ["A", "D", "E"] { XCTAssertNotNil(store.lookup(key: key, requestHeaders: []), key) }
        let s = store.stats
        XCTAssertEqual(s.evictions, 2)
        XCTAssertEqual(s.entries, 3)
        XCTAssertEqual(s.bytes, unit * 3)
        XCTAssertEqual(files(in: root + "/second").count, 3)
    }

    func testRestartOrdersByMtimeAndEvictsOldestOverCapacity() throws {
        let body = String(repeating: "m", count: 100)
        var unit = 0
        do {
            let store = try open()
            for key in ["A", "B", "C", "D"] { XCTAssertTrue(store.store(key: key, response: response(body))) }
            unit = store.stats.bytes / 4
            // A newest, then C, D, B oldest.
            try setMtime(path(store, "A"), 4_000)
            try setMtime(path(store, "C"), 3_000)
            try setMtime(path(store, "D"), 2_000)
            try setMtime(path(store, "B"), 1_000)
        }
        let store = try open(capacity: unit * 3)
        XCTAssertEqual(store.stats.evictions, 1)
        XCTAssertEqual(store.stats.entries, 3)
        assertConsistent(store)
        XCTAssertNil(store.lookup(key: "B", requestHeaders: []))
        XCTAssertNotNil(store.lookup(key: "D", requestHeaders: []))
        // Recency now: D, A, C; a new entry evicts C.
        XCTAssertNotNil(store.lookup(key: "A", requestHeaders: []))
        XCTAssertNotNil(store.lookup(key: "D", requestHeaders: []))
        XCTAssertTrue(store.store(key: "E", response: response(body)))
        XCTAssertNil(store.lookup(key: "C", requestHeaders: []))
        assertConsistent(store)
    }

    func testCapacityHeldUnderRandomInserts() throws {
        var rng = FastRandom(seed: 42)
        let capacity = 60_000
        let store = try open(capacity: capacity, maxObject: 20_000)
        var expectedStores = 0
        for i in 0..<600 {
            let size = Int.random(in: 0..<25_000, using: &rng)
            let key = "k\(Int.random(in: 0..<100, using: &rng))"
            let vary: HTTPFields = Int.random(in: 0..<2, using: &rng) == 0 ? [] : [("Vary", "Accept-Encoding")]
            let encoding = ["gzip", "br", "identity"][Int.random(in: 0..<3, using: &rng)]
            let r = response(String(repeating: "r", count: size), headers: vary, vary: [("Accept-Encoding", encoding)])
            let stored = store.store(key: key, response: r)
            XCTAssertEqual(stored, r.cost <= 20_000, "insert \(i)")
            if stored { expectedStores += 1 }
            XCTAssertLessThanOrEqual(store.stats.bytes, capacity, "insert \(i)")
            if Int.random(in: 0..<3, using: &rng) == 0 {
                let probe = "k\(Int.random(in: 0..<100, using: &rng))"
                if let got = store.lookup(key: probe, requestHeaders: [("Accept-Encoding", encoding)]) {
                    XCTAssertEqual(Set(text(got) ?? "x"), ["r"])
                }
            }
        }
        XCTAssertEqual(store.stats.stores, expectedStores)
        XCTAssertGreaterThan(store.stats.evictions, 0)
        XCTAssertEqual(store.stats.corruptDropped, 0)
        assertConsistent(store)
    }

    // MARK: - Purge

    func testPurgeByKeyAndPrefixRemovesFiles() throws {
        let store = try open()
        let vary: HTTPFields = [("Vary", "Accept-Encoding")]
        XCTAssertTrue(store.store(key: "GET a.example/x", response: response("1", headers: vary, vary: [("Accept-Encoding", "gzip")])))
        XCTAssertTrue(store.store(key: "GET a.example/x", response: response("2", headers: vary, vary: [("Accept-Encoding", "br")])))
        XCTAssertTrue(store.store(key: "GET a.example/y", response: response("3")))
        XCTAssertTrue(store.store(key: "GET b.example/x", response: response("4")))
        XCTAssertEqual(files().count, 4)
        XCTAssertEqual(store.purge(key: "GET a.example/x"), 2)
        XCTAssertEqual(store.purge(key: "GET a.example/x"), 0)
        XCTAssertEqual(files().count, 2)
        XCTAssertNil(store.lookup(key: "GET a.example/x", requestHeaders: [("Accept-Encoding", "gzip")]))
        XCTAssertTrue(store.store(key: "GET a.example/z", response: response("5")))
        XCTAssertEqual(store.purge(prefix: "GET a.example/"), 2)
        XCTAssertEqual(store.purge(prefix: "GET nothing"), 0)
        XCTAssertEqual(text(store.lookup(key: "GET b.example/x", requestHeaders: [])), "4")
        XCTAssertEqual(store.stats.purges, 4)
        XCTAssertEqual(store.stats.entries, 1)
        assertConsistent(store)
        XCTAssertEqual(store.purge(prefix: ""), 1)
        XCTAssertEqual(files().count, 0)
        XCTAssertEqual(store.stats.bytes, 0)
    }

    func testPurgeLogMakesSlowStoresYieldToPurges() {
        var index = DiskIndex(capacity: 100)
        let start = index.purgeEpoch
        XCTAssertFalse(index.purged(key: "GET a/x", since: start))
        index.logPurge("GET b", isPrefix: true)
        XCTAssertFalse(index.purged(key: "GET a/x", since: start))
        index.logPurge("GET a/", isPrefix: true)
        XCTAssertTrue(index.purged(key: "GET a/x", since: start))
        XCTAssertFalse(index.purged(key: "GET a/x", since: index.purgeEpoch))
        let before = index.purgeEpoch
        index.logPurge("GET a/x", isPrefix: false)
        XCTAssertTrue(index.purged(key: "GET a/x", since: before))
        XCTAssertFalse(index.purged(key: "GET a/xy", since: before))
        let later = index.purgeEpoch
        for i in 0..<DiskIndex.purgeLogLimit { index.logPurge("other\(i)", isPrefix: false) }
        XCTAssertEqual(index.purgeLog.count, DiskIndex.purgeLogLimit)
        XCTAssertFalse(index.purged(key: "GET a/x", since: later))
        index.logPurge("other", isPrefix: false)
        XCTAssertTrue(index.purged(key: "GET a/x", since: later), "log no longer reaches back: assume purged")
    }

    // MARK: - Corruption

    func testFlippedBodyByteDroppedAtLookup() throws {
        let store = try open()
        XCTAssertTrue(store.store(key: "k", response: response("the body that will be damaged")))
        XCTAssertTrue(store.store(key: "ok", response: response("fine")))
        let file = path(store, "k")
        var data = bytes(file)
        data[data.count - 10] ^= 0x01
        write(data, to: file)
        XCTAssertNil(store.lookup(key: "k", requestHeaders: []))
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
        XCTAssertEqual(store.stats.corruptDropped, 1)
        XCTAssertEqual(store.stats.entries, 1)
        XCTAssertNil(store.lookup(key: "k", requestHeaders: []))
        XCTAssertEqual(store.stats.corruptDropped, 1)
        XCTAssertEqual(text(store.lookup(key: "ok", requestHeaders: [])), "fine")
        assertConsistent(store)
    }

    func testFlippedHeaderByteAndTruncationDroppedAtRestart() throws {
        var paths: [String] = []
        do {
            let store = try open()
            for key in ["header", "truncated", "short", "ok"] {
                XCTAssertTrue(store.store(key: key, response: response("body of \(key)", headers: [("X", "y")])))
                paths.append(path(store, key))
            }
        }
        var header = bytes(paths[0])
        header[20] ^= 0x80
        write(header, to: paths[0])
        let truncated = bytes(paths[1])
        write(Array(truncated.prefix(truncated.count - 3)), to: paths[1])
        write(Array(truncated.prefix(7)), to: paths[2])  // shorter than the fixed prefix
        let store = try open()
        XCTAssertEqual(store.stats.corruptDropped, 3)
        XCTAssertEqual(store.stats.entries, 1)
        for p in paths.prefix(3) { XCTAssertFalse(FileManager.default.fileExists(atPath: p), p) }
        XCTAssertEqual(text(store.lookup(key: "ok", requestHeaders: [])), "body of ok")
        assertConsistent(store)
    }

    func testTruncatedFileDroppedAtLookup() throws {
        let store = try open()
        XCTAssertTrue(store.store(key: "k", response: response(String(repeating: "t", count: 500))))
        let file = path(store, "k")
        write(Array(bytes(file).prefix(200)), to: file)
        XCTAssertNil(store.lookup(key: "k", requestHeaders: []))
        XCTAssertEqual(store.stats.corruptDropped, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
        // A file deleted behind the store's back is dropped from the index too.
        XCTAssertTrue(store.store(key: "gone", response: response("g")))
        try FileManager.default.removeItem(atPath: path(store, "gone"))
        XCTAssertNil(store.lookup(key: "gone", requestHeaders: []))
        XCTAssertEqual(store.stats.corruptDropped, 2)
        XCTAssertEqual(store.stats.entries, 0)
        XCTAssertEqual(store.stats.bytes, 0)
    }

    func testForeignGarbageAndTempFilesDroppedAtRestart() throws {
        var valid: [UInt8] = []
        var okPath = ""
        do {
            let store = try open()
            XCTAssertTrue(store.store(key: "ok", response: response("kept")))
            okPath = path(store, "ok")
            valid = bytes(okPath)
        }
        let sub = dir + "/ab"
        let name = "ab" + String(repeating: "0", count: 30)
        let magic = Array("LDSC".utf8) + [1, 0, 0, 0]
        write(Array("this is not a cache entry at all, just text".utf8), to: sub + "/" + name)       // garbage
        write([], to: sub + "/ab" + String(repeating: "1", count: 30))                                  // zero length
        write(magic + le(UInt32(0xFFFF_FFFF)) + [UInt8](repeating: 0, count: 64), to: sub + "/ab" + String(repeating: "2", count: 30))  // huge header length
        write(magic + le(UInt32(0)) + [0, 0, 0, 0] + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F] + [0, 0, 0, 0],
              to: sub + "/ab" + String(repeating: "3", count: 30))                                      // huge body length
        write(valid, to: sub + "/" + ".tmp.ab" + String(repeating: "4", count: 30) + ".1.0")           // stray temp file
        write(valid, to: sub + "/not-a-hash")                                                          // foreign name
        write(valid, to: dir + "/cd/" + "ab" + String(repeating: "5", count: 30))                      // wrong subdirectory
        var otherVersion = valid
        otherVersion[4] = 9
        write(otherVersion, to: sub + "/ab" + String(repeating: "6", count: 30))                       // unknown version
        try FileManager.default.createDirectory(atPath: sub + "/nested", withIntermediateDirectories: true)
        write([1], to: dir + "/README")                                                                // outside our namespace
        let store = try open()
        XCTAssertEqual(store.stats.corruptDropped, 8)
        XCTAssertEqual(store.stats.entries, 1)
        XCTAssertEqual(text(store.lookup(key: "ok", requestHeaders: [])), "kept")
        XCTAssertEqual(files().keys.sorted(), [okPath, sub + "/nested"].sorted())
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/README"))
        XCTAssertEqual(store.stats.bytes, valid.count)
    }

    func testLyingLengthFieldsDroppedEvenWithValidChecksums() throws {
        let magic = Array("LDSC".utf8) + [1, 0, 0, 0]
        func image(header: [UInt8], bodyLength: UInt64) -> [UInt8] {
            var out = magic + le(UInt32(header.count)) + header
            out += le(crc32(out))
            out += le(bodyLength)
            return out + le(crc32(out))
        }
        func string(_ s: String) -> [UInt8] { le(UInt32(s.utf8.count)) + Array(s.utf8) }
        func name(_ c: Character) -> String { dir + "/ef/ef" + String(repeating: c, count: 30) }
        let proper = try open().filePath(key: "k", secondaryKey: "")
        let fixed = string("k") + string("") + [0] + string("") + le(Int64(200)) + le(Int64(1)) + le(Int64(2))
        let wellFormed = image(header: fixed + le(UInt32(0)) + le(UInt32(0)), bodyLength: 0)
        write(wellFormed, to: proper)                                                           // accepted
        write(image(header: le(UInt32(0xFFFF_FFF0)) + Array("abc".utf8), bodyLength: 0), to: name("0"))  // string past the section
        write(image(header: fixed + le(UInt32(0xFFFF_FFFF)), bodyLength: 0), to: name("1"))     // field count past the section
        write(image(header: fixed + le(UInt32(0)) + le(UInt32(0)), bodyLength: 1 << 62), to: name("2"))  // body past the file
        write(image(header: fixed + le(UInt32(0)) + le(UInt32(0)) + [0], bodyLength: 0), to: name("3"))  // bytes left in the section
        write(wellFormed, to: name("4"))                                                        // keys do not hash to the name
        write(magic + le(UInt32(5_000)) + [UInt8](repeating: 7, count: 100), to: name("5"))     // header past the file
        let store = try open()
        XCTAssertEqual(store.stats.corruptDropped, 6)
        XCTAssertEqual(store.stats.entries, 1)
        let got = try XCTUnwrap(store.lookup(key: "k", requestHeaders: []))
        XCTAssertEqual(got.status, 200)
        XCTAssertEqual(got.requestTime, 1)
        XCTAssertEqual(got.responseTime, 2)
        XCTAssertEqual(got.bodyBytes, 0)
        XCTAssertEqual(files().keys.sorted(), [proper])

        // At lookup: a body length that lies, with both checksums right.
        XCTAssertTrue(store.store(key: "live", response: response("live body")))
        let live = path(store, "live")
        var data = bytes(live)
        let h = Int(data[8]) | Int(data[9]) << 8 | Int(data[10]) << 16 | Int(data[11]) << 24
        data.replaceSubrange((12 + h + 4)..<(12 + h + 12), with: le(UInt64.max))
        data.replaceSubrange((data.count - 4)..<data.count, with: le(crc32(Array(data.dropLast(4)))))
        write(data, to: live)
        XCTAssertNil(store.lookup(key: "live", requestHeaders: []))
        XCTAssertEqual(store.stats.corruptDropped, 7)
        XCTAssertFalse(FileManager.default.fileExists(atPath: live))
    }

    func testHashCollisionNeverServesAnotherKey() throws {
        var pathA = ""
        var pathB = ""
        do {
            let store = try open()
            XCTAssertTrue(store.store(key: "A", response: response("secret of A")))
            XCTAssertTrue(store.store(key: "B", response: response("public B")))
            pathA = path(store, "A")
            pathB = path(store, "B")
            // Pretend A and B collide: B's file name now holds A's object.
            write(bytes(pathA), to: pathB)
            XCTAssertNil(store.lookup(key: "B", requestHeaders: []))
            XCTAssertEqual(store.stats.corruptDropped, 1)
            XCTAssertFalse(FileManager.default.fileExists(atPath: pathB))
            XCTAssertEqual(text(store.lookup(key: "A", requestHeaders: [])), "secret of A")
        }
        // The same at start-up: a file whose keys do not hash to its name is dropped.
        write(bytes(pathA), to: pathB)
        let store = try open()
        XCTAssertEqual(store.stats.corruptDropped, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pathB))
        XCTAssertNil(store.lookup(key: "B", requestHeaders: []))
        XCTAssertEqual(text(store.lookup(key: "A", requestHeaders: [])), "secret of A")
    }

    func testRandomDamageNeverCrashesOrServesWrongBytes() throws {
        var rng = FastRandom(seed: 7)
        let body = String(repeating: "0123456789", count: 30)
        let original = response(body, headers: [("Vary", "Accept"), ("Cache-Control", "max-age=60")], vary: [("Accept", "text/html")])
        for round in 0..<150 {
            var store: DiskStore? = try open()
            XCTAssertEqual(store?.store(key: "fuzz", response: original), true)
            let secondary = VaryKey.secondaryKey(vary: "Accept", requestHeaders: [("Accept", "text/html")]) ?? ""
            let file = store?.filePath(key: "fuzz", secondaryKey: secondary) ?? ""
            var data = bytes(file)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0:
                let i = Int.random(in: 0..<data.count, using: &rng)
                data[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            case 1:
                data = Array(data.prefix(Int.random(in: 0..<data.count, using: &rng)))
            case 2:
                let i = Int.random(in: 0..<(data.count - 4), using: &rng)
                for k in 0..<4 { data[i + k] = UInt8.random(in: 0...255, using: &rng) }
            default:
                data += [UInt8](repeating: UInt8.random(in: 0...255, using: &rng), count: Int.random(in: 1..<40, using: &rng))
            }
            write(data, to: file)
            if round % 2 == 0 {
                let got = store?.lookup(key: "fuzz", requestHeaders: [("Accept", "text/html")])
                XCTAssertTrue(got == nil || text(got) == body, "round \(round)")
                let s = store?.stats
                XCTAssertEqual((s?.entries ?? 0) + (s?.corruptDropped ?? 0), 1, "round \(round)")
            } else {
                store = nil
                let restarted = try open()
                let got = restarted.lookup(key: "fuzz", requestHeaders: [("Accept", "text/html")])
                XCTAssertTrue(got == nil || text(got) == body, "round \(round)")
                XCTAssertEqual(restarted.stats.entries + restarted.stats.corruptDropped, 1, "round \(round)")
            }
            store = nil
            try FileManager.default.removeItem(atPath: dir)
        }
    }

    // MARK: - Concurrency

    func testConcurrentStoreAndLookup() throws {
        let store = try open(capacity: 200_000, maxObject: 20_000)
        let wrong = Atomic<Int>(0)
        let served = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 6) { t in
            var rng = FastRandom(seed: UInt64(t) &+ 1)
            for _ in 0..<300 {
                let key = "k\(Int.random(in: 0..<24, using: &rng))"
                let encoding = Int.random(in: 0..<2, using: &rng) == 0 ? "gzip" : "br"
                switch Int.random(in: 0..<10, using: &rng) {
                case 0..<4:
                    let size = Int.random(in: 1..<8_000, using: &rng)
                    let r = response(
                        String(repeating: "\(key)/\(encoding);", count: size / 8 + 1), headers: [("Vary", "Accept-Encoding")],
                        vary: [("Accept-Encoding", encoding)])
                    store.store(key: key, response: r)
                case 4..<9:
                    if let got = store.lookup(key: key, requestHeaders: [("Accept-Encoding", encoding)]) {
                        served.add(1, ordering: .relaxed)
                        let body = text(got) ?? ""
                        let unit = "\(key)/\(encoding);"
                        if body.isEmpty || body != String(repeating: unit, count: body.utf8.count / unit.utf8.count) {
                            wrong.add(1, ordering: .relaxed)
                        }
                    }
                default:
                    if Int.random(in: 0..<4, using: &rng) == 0 { store.purge(prefix: "k1") } else { store.purge(key: key) }
                }
            }
        }
        XCTAssertEqual(wrong.load(ordering: .relaxed), 0)
        XCTAssertGreaterThan(served.load(ordering: .relaxed), 0)
        let s = store.stats
        XCTAssertEqual(s.corruptDropped, 0)
        XCTAssertEqual(s.writeErrors, 0)
        assertConsistent(store)
        XCTAssertTrue(files().keys.allSatisfy { !($0 as NSString).lastPathComponent.hasPrefix(".tmp.") })
    }
}
