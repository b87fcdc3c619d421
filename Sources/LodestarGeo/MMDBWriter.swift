import LodestarTopology

/// One network and the place it is written as, in the GeoLite2-City data-record layout.
public struct GeoRecord: Sendable, Equatable {
    /// The network (IPv4 or IPv6) the record covers.
    public var prefix: IPPrefix
    /// Degrees north, -90...90.
    public var latitude: Double
    /// Degrees east, -180...180.
    public var longitude: Double
    /// ISO 3166-1 alpha-2 country code, e.g. "DE".
    public var country: String
    /// Two-letter continent code (AF AN AS EU NA OC SA).
    public var continent: String
    /// English city name, if any.
    public var city: String?

    public init(prefix: IPPrefix, latitude: Double, longitude: Double, country: String, continent: String,
                city: String? = nil) {
        self.prefix = prefix
        self.latitude = latitude
        self.longitude = longitude
        self.country = country
        self.continent = continent
        self.city = city
    }
}

/// Why `MMDBWriter.build` refused its input.
public enum MMDBWriterError: Error, Equatable, CustomStringConvertible {
    /// The same network appears twice with different data.
    case conflictingRecords(IPPrefix)
    /// An IPv6 network overlaps `::/80`, which holds the IPv4 subtree and its `::ffff:0:0/96` alias.
    case overlapsIPv4Space(IPPrefix)
    /// An IPv6 network was given for an IPv4-only (ip_version 4) tree.
    case ipv6InIPv4Database(IPPrefix)
    /// Latitude or longitude is not a finite number within range.
    case invalidCoordinates(IPPrefix)
    /// A string or map exceeds the largest size the format can encode (16,843,036; spec "Payload Size").
    case valueTooLarge(Int)
    /// The tree plus data section do not fit the largest record size (32 bits).
    case databaseTooLarge(nodeCount: Int, dataSectionSize: Int)
    /// The metadata exceeds the 128 KiB readers search (spec "Database Metadata").
    case metadataTooLarge(Int)
    /// build_epoch must be non-zero (libmaxminddb rejects 0 as missing).
    case invalidBuildEpoch
    /// ip_version must be 4 or 6.
    case unsupportedIPVersion(Int)
    /// record_size must be 24, 28 or 32.
    case unsupportedRecordSize(Int)

    public var description: String {
        switch self {
        case .conflictingRecords(let p): return "network \(p) appears more than once with different data"
        case .overlapsIPv4Space(let p):
            return "IPv6 network \(p) overlaps ::/80, which is reserved for the IPv4 subtree (write IPv4 networks as IPv4)"
        case .ipv6InIPv4Database(let p): return "IPv6 network \(p) cannot be stored in an IPv4-only database"
        case .invalidCoordinates(let p): return "network \(p) has latitude/longitude out of range"
        case .valueTooLarge(let n): return "value of size \(n) exceeds the MaxMind DB limit of 16843036"
        case .databaseTooLarge(let nodes, let size):
            return "\(nodes) nodes and a \(size)-byte data section do not fit 32-bit records"
        case .metadataTooLarge(let n): return "metadata of \(n) bytes exceeds the 131072-byte limit"
        case .invalidBuildEpoch: return "build_epoch must be non-zero"
        case .unsupportedIPVersion(let v): return "ip_version \(v) is not 4 or 6"
        case .unsupportedRecordSize(let s): return "record_size \(s) is not 24, 28 or 32"
        }
    }
}

/// Pure Swift writer of MaxMind DB format v2.0 files (https://maxmind.github.io/MaxMind-DB/).
///
/// The tree is IPv6 (ip_version 6): IPv4 networks sit at `::a.b.c.d/(96+len)` and `::ffff:0:0/96` points to the
/// same IPv4 subtree ("IPv4 addresses in an IPv6 tree"); `2002::/16` (6to4) is not aliased. Output depends only on
/// the set of records, not their order, so rebuilding gives identical bytes.
public enum MMDBWriter {
    /// Builds a complete database: search tree, 16-byte separator, data section, metadata.
    public static func build(records: [GeoRecord], databaseType: String = "Lodestar-City", description: String,
                             buildEpoch: UInt64) throws -> [UInt8] {
        try build(records: records, databaseType: databaseType, description: description, buildEpoch: buildEpoch,
                  ipVersion: 6, recordSize: nil)
    }

    /// As `build`, with the tree's IP version and an optional forced record size (24, 28 or 32) for tests.
    static func build(records: [GeoRecord], databaseType: String, description: String, buildEpoch: UInt64,
                      ipVersion: Int, recordSize forcedRecordSize: Int?) throws -> [UInt8] {
        var entries = [(prefix: IPPrefix, payload: [UInt8])]()
        entries.reserveCapacity(records.count)
        for record in records {
            guard record.latitude.isFinite, record.longitude.isFinite,
                  (-90.0...90.0).contains(record.latitude), (-180.0...180.0).contains(record.longitude) else {
                throw MMDBWriterError.invalidCoordinates(record.prefix)
            }
            entries.append((record.prefix, try encodeRecord(record)))
        }
        return try build(entries: entries, databaseType: databaseType, description: description,
                         buildEpoch: buildEpoch, ipVersion: ipVersion, recordSize: forcedRecordSize)
    }

    /// Builds a database from networks and already-encoded data records (any layout; tests use it for
    /// GeoLite2 variants the public API cannot express).
    static func build(entries: [(prefix: IPPrefix, payload: [UInt8])], databaseType: String, description: String,
                      buildEpoch: UInt64, ipVersion: Int, recordSize forcedRecordSize: Int?) throws -> [UInt8] {
        guard ipVersion == 4 || ipVersion == 6 else { throw MMDBWriterError.unsupportedIPVersion(ipVersion) }
        if let size = forcedRecordSize, ![24, 28, 32].contains(size) {
            throw MMDBWriterError.unsupportedRecordSize(size)
        }
        guard buildEpoch != 0 else { throw MMDBWriterError.invalidBuildEpoch }

        // Normalise every network to a left-aligned key in the tree's address space, then sort so that the
        // output never depends on input order.
        var keyed = [(key: TreeKey, prefix: IPPrefix, payload: [UInt8])]()
        keyed.reserveCapacity(entries.count)
        for entry in entries {
            keyed.append((try TreeKey(entry.prefix, ipVersion: ipVersion), entry.prefix, entry.payload))
        }
        keyed.sort { $0.key < $1.key }

        // Data section: each distinct encoded record stored once (dedupe by bytes).
        var dataSection = [UInt8]()
        var offsetOfPayload = [[UInt8]: UInt32]()
        var trie = Trie()
        for (key, prefix, payload) in keyed {
            let offset: UInt32
            if let existing = offsetOfPayload[payload] {
                offset = existing
            } else {
                guard dataSection.count <= Int(UInt32.max) else {
                    throw MMDBWriterError.databaseTooLarge(nodeCount: trie.count, dataSectionSize: dataSection.count)
                }
                offset = UInt32(dataSection.count)
                offsetOfPayload[payload] = offset
                dataSection.append(contentsOf: payload)
            }
            if !trie.insert(key, value: Int64(offset)) { throw MMDBWriterError.conflictingRecords(prefix) }
        }
        // libmaxminddb refuses a data section smaller than 3 bytes; pad an empty one with end markers (type 13).
        while dataSection.count < 3 { dataSection.append(contentsOf: [0x00, 0x06]) }

        if ipVersion == 6 {
            // ::/96 is the IPv4 root; make ::ffff:0:0/96 lead to the very same node.
            let ipv4Root = trie.path(to: TreeKey(hi: 0, lo: 0, length: 96))
            let mappedParent = trie.path(to: TreeKey(hi: 0, lo: 0x0000_ffff_0000_0000, length: 95))
            trie.setChild(of: mappedParent, bit: 1, to: ipv4Root)
        }

        let tree = try serialise(trie, dataSectionSize: dataSection.count, forcedRecordSize: forcedRecordSize)

        var metadata = MMDBEncoder()
        try metadata.mapHeader(count: 9)
        try metadata.string("binary_format_major_version"); metadata.uint16(2)
        try metadata.string("binary_format_minor_version"); metadata.uint16(0)
        try metadata.string("build_epoch"); metadata.uint64(buildEpoch)
        try metadata.string("database_type"); try metadata.string(databaseType)
        try metadata.string("description"); try metadata.mapHeader(count: 1)
        try metadata.string("en"); try metadata.string(description)
        try metadata.string("ip_version"); metadata.uint16(UInt16(ipVersion))
        try metadata.string("languages"); try metadata.arrayHeader(count: 1); try metadata.string("en")
        try metadata.string("node_count"); metadata.uint32(UInt32(tree.nodeCount))
        try metadata.string("record_size"); metadata.uint16(UInt16(tree.recordSize))
        let metadataSize = metadataMarker.count + metadata.bytes.count
        guard metadataSize <= 131_072 else { throw MMDBWriterError.metadataTooLarge(metadataSize) }

        var out = tree.bytes
        out.reserveCapacity(tree.bytes.count + 16 + dataSection.count + metadataSize)
        out.append(contentsOf: repeatElement(0, count: 16))  // spec "Data Section Separator"
        out.append(contentsOf: dataSection)
        out.append(contentsOf: metadataMarker)
        out.append(contentsOf: metadata.bytes)
        return out
    }

    /// `\xAB\xCD\xEFMaxMind.com`, which starts the metadata (spec "Database Metadata").
    static let metadataMarker: [UInt8] = [0xAB, 0xCD, 0xEF] + Array("MaxMind.com".utf8)

    /// Encodes one data record in the GeoLite2-City layout (spec "Output Data Section").
    static func encodeRecord(_ record: GeoRecord) throws -> [UInt8] {
        var e = MMDBEncoder()
        try e.mapHeader(count: record.city == nil ? 3 : 4)
        if let city = record.city {
            try e.string("city")
            try e.mapHeader(count: 1)
            try e.string("names")
            try e.mapHeader(count: 1)
            try e.string("en")
            try e.string(city)
        }
        try e.string("continent")
        try e.mapHeader(count: 1)
        try e.string("code")
        try e.string(record.continent)
        try e.string("country")
        try e.mapHeader(count: 1)
        try e.string("iso_code")
        try e.string(record.country)
        try e.string("location")
        try e.mapHeader(count: 2)
        try e.string("latitude")
        e.double(record.latitude)
        try e.string("longitude")
        e.double(record.longitude)
        return e.bytes
    }

    /// Numbers the trie's inner nodes breadth-first (root = node 0) and writes the search tree (spec "Node Layout").
    private static func serialise(_ trie: Trie, dataSectionSize: Int,
                                  forcedRecordSize: Int?) throws -> (bytes: [UInt8], nodeCount: Int, recordSize: Int) {
        var number = [Int](repeating: -1, count: trie.count)
        var inherited = [Int64](repeating: -1, count: trie.count)
        var order = [Trie.root]
        number[Trie.root] = 0
        var next = 0
        while next < order.count {
            let node = order[next]
            next += 1
            let effective = trie.value[node] >= 0 ? trie.value[node] : inherited[node]
            // Leaf children need no node: the parent's record points at their data (or is empty).
            for child in trie.children(of: node) where trie.hasChildren(child) && number[child] < 0 {
                number[child] = order.count
                inherited[child] = effective
                order.append(child)
            }
        }
        let nodeCount = order.count
        let limit = nodeCount + 16 + dataSectionSize  // every record value is below this
        let recordSize: Int
        if let forced = forcedRecordSize {
            recordSize = forced
        } else if limit <= 1 << 24 {
            recordSize = 24
        } else if limit <= 1 << 28 {
            recordSize = 28
        } else {
            recordSize = 32
        }
        guard limit <= 1 << recordSize else {
            throw MMDBWriterError.databaseTooLarge(nodeCount: nodeCount, dataSectionSize: dataSectionSize)
        }

        // Record values (spec "Search Lookup Algorithm"): < nodeCount a node, == nodeCount no data,
        // otherwise nodeCount + 16 + data-section offset.
        func recordValue(child: Int, effective: Int64) -> UInt32 {
            if child == Trie.none { return dataValue(effective) }
            if number[child] >= 0 { return UInt32(number[child]) }
            return dataValue(trie.value[child] >= 0 ? trie.value[child] : effective)
        }
        func dataValue(_ offset: Int64) -> UInt32 {
            offset < 0 ? UInt32(nodeCount) : UInt32(Int64(nodeCount) + 16 + offset)
        }

        var bytes = [UInt8]()
        bytes.reserveCapacity(nodeCount * recordSize / 4)
        for node in order {
            let effective = trie.value[node] >= 0 ? trie.value[node] : inherited[node]
            let l = recordValue(child: trie.left[node], effective: effective)
            let r = recordValue(child: trie.right[node], effective: effective)
            func append(_ v: UInt32, bytes count: Int) {
                for i in stride(from: count - 1, through: 0, by: -1) { bytes.append(UInt8(v >> UInt32(i * 8) & 0xff)) }
            }
            switch recordSize {
            case 24:
                append(l, bytes: 3)
                append(r, bytes: 3)
            case 28:
                // The middle byte holds bits 27..24 of the left record (high nibble) and of the right one (low).
                append(l & 0xff_ffff, bytes: 3)
                bytes.append(UInt8((l >> 24 & 0x0f) << 4 | (r >> 24 & 0x0f)))
                append(r & 0xff_ffff, bytes: 3)
            default:
                append(l, bytes: 4)
                append(r, bytes: 4)
            }
        }
        return (bytes, nodeCount, recordSize)
    }
}

/// A network as a left-aligned 128-bit key plus a length, in the tree's address space.
struct TreeKey: Comparable {
    var hi: UInt64
    var lo: UInt64
    var length: Int

    init(hi: UInt64, lo: UInt64, length: Int) {
        self.hi = hi
        self.lo = lo
        self.length = length
    }

    /// Places `prefix` in an ip_version 4 or 6 tree; IPv4-mapped IPv6 networks become IPv4 ones.
    init(_ prefix: IPPrefix, ipVersion: Int) throws {
        switch prefix.address {
        case .v4(let v):
            if ipVersion == 6 {
                self.init(hi: 0, lo: UInt64(v), length: 96 + prefix.length)
            } else {
                self.init(hi: UInt64(v) << 32, lo: 0, length: prefix.length)
            }
        case .v6(let hi, let lo):
            // ::ffff:a.b.c.d/(96+n) is written as a.b.c.d/n, which the alias then serves.
            if hi == 0, lo >> 32 == 0xffff, prefix.length >= 96,
               let v4 = IPPrefix(address: .v4(UInt32(lo & 0xffff_ffff)), length: prefix.length - 96) {
                try self.init(v4, ipVersion: ipVersion)
                return
            }
            guard ipVersion == 6 else { throw MMDBWriterError.ipv6InIPv4Database(prefix) }
            if prefix.address.masked(to: min(prefix.length, 80)) == .v6(0, 0) {
                throw MMDBWriterError.overlapsIPv4Space(prefix)
            }
            self.init(hi: hi, lo: lo, length: prefix.length)
        }
    }

    /// Bit `index` (0 = most significant) of the key.
    func bit(_ index: Int) -> Int {
        index < 64 ? Int(hi >> UInt64(63 - index) & 1) : Int(lo >> UInt64(127 - index) & 1)
    }

    static func < (a: TreeKey, b: TreeKey) -> Bool { (a.hi, a.lo, a.length) < (b.hi, b.lo, b.length) }
}

/// A binary trie over tree keys; values are data-section offsets, -1 for none.
struct Trie {
    static let root = 0
    /// Child slot meaning "no child" (the root is never anyone's child).
    static let none = 0

    var left: [Int] = [none]
    var right: [Int] = [none]
    var value: [Int64] = [-1]

    var count: Int { left.count }

    func hasChildren(_ node: Int) -> Bool { left[node] != Trie.none || right[node] != Trie.none }

    /// The existing children of `node`, left first.
    func children(of node: Int) -> [Int] {
        let l = left[node], r = right[node]
        if l == Trie.none { return r == Trie.none ? [] : [r] }
        return r == Trie.none ? [l] : [l, r]
    }

    mutating func setChild(of node: Int, bit: Int, to child: Int) {
        if bit == 0 { left[node] = child } else { right[node] = child }
    }

    /// The node for `key`, creating nodes along the way.
    mutating func path(to key: TreeKey) -> Int {
        var node = Trie.root
        for depth in 0..<key.length {
            let bit = key.bit(depth)
            var child = bit == 0 ? left[node] : right[node]
            if child == Trie.none {
                child = left.count
                left.append(Trie.none)
                right.append(Trie.none)
                value.append(-1)
                setChild(of: node, bit: bit, to: child)
            }
            node = child
        }
        return node
    }

    /// Stores `value` at `key`; false when a different value is already there.
    mutating func insert(_ key: TreeKey, value newValue: Int64) -> Bool {
        let node = path(to: key)
        if value[node] >= 0 && value[node] != newValue { return false }
        value[node] = newValue
        return true
    }
}

/// Appends MaxMind DB data fields (spec "Output Data Section", "Data Field Format").
struct MMDBEncoder {
    var bytes: [UInt8] = []

    /// Largest payload size or map/array count the format encodes (spec "Payload Size").
    static let maximumSize = 65_821 + 0xFF_FFFF

    /// Writes a control byte for `type` (1...15; 8 and up as extended types) and `size`, with size bytes.
    mutating func control(type: Int, size: Int) throws {
        guard size >= 0, size <= MMDBEncoder.maximumSize else { throw MMDBWriterError.valueTooLarge(size) }
        let sizeBits: UInt8
        var extra: [UInt8] = []
        if size < 29 {
            sizeBits = UInt8(size)
        } else if size < 285 {
            sizeBits = 29
            extra = [UInt8(size - 29)]
        } else if size < 65_821 {
            sizeBits = 30
            let v = size - 285
            extra = [UInt8(v >> 8), UInt8(v & 0xff)]
        } else {
            sizeBits = 31
            let v = size - 65_821
            extra = [UInt8(v >> 16), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
        }
        if type <= 7 {
            bytes.append(UInt8(type) << 5 | sizeBits)
        } else {
            bytes.append(sizeBits)          // type bits 000: extended
            bytes.append(UInt8(type - 7))   // next byte holds type - 7
        }
        bytes.append(contentsOf: extra)     // size bytes follow the type-specifying bytes
    }

    /// UTF-8 string (type 2).
    mutating func string(_ s: String) throws {
        let utf8 = Array(s.utf8)
        try control(type: 2, size: utf8.count)
        bytes.append(contentsOf: utf8)
    }

    /// IEEE-754 binary64, big-endian (type 3).
    mutating func double(_ d: Double) {
        bytes.append(0x68)  // type 3, size 8
        let bits = d.bitPattern
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(bits >> UInt64(shift) & 0xff)) }
    }

    /// IEEE-754 binary32, big-endian (extended type 15).
    mutating func float(_ f: Float) {
        bytes += [0x04, 0x08]  // size 4, type 15 - 7
        let bits = f.bitPattern
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(bits >> UInt32(shift) & 0xff)) }
    }

    /// uint16 (type 5) with leading zero bytes dropped.
    mutating func uint16(_ v: UInt16) { unsigned(type: 5, UInt64(v)) }

    /// uint32 (type 6) with leading zero bytes dropped.
    mutating func uint32(_ v: UInt32) { unsigned(type: 6, UInt64(v)) }

    /// uint64 (extended type 9) with leading zero bytes dropped.
    mutating func uint64(_ v: UInt64) { unsigned(type: 9, v) }

    private mutating func unsigned(type: Int, _ v: UInt64) {
        let count = (64 - v.leadingZeroBitCount + 7) / 8
        if type <= 7 {
            bytes.append(UInt8(type) << 5 | UInt8(count))
        } else {
            bytes.append(UInt8(count))
            bytes.append(UInt8(type - 7))
        }
        for i in stride(from: count - 1, through: 0, by: -1) { bytes.append(UInt8(v >> UInt64(i * 8) & 0xff)) }
    }

    /// Map (type 7) of `count` key/value pairs; the pairs follow.
    mutating func mapHeader(count: Int) throws { try control(type: 7, size: count) }

    /// Array (extended type 11) of `count` values; the values follow.
    mutating func arrayHeader(count: Int) throws { try control(type: 11, size: count) }
}
