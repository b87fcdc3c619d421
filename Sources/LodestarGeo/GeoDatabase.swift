import CMaxMindDB
import LodestarTopology
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// GeoLocation and GeoLookup (the lookup result types) are declared in GeoLookup.swift.

/// The database's metadata section (MaxMind DB spec "Database Metadata").
public struct GeoMetadata: Sendable, Equatable {
    public var databaseType: String
    /// 4 or 6.
    public var ipVersion: Int
    public var nodeCount: Int
    /// 24, 28 or 32 bits.
    public var recordSize: Int
    /// Unix time the database was built.
    public var buildEpoch: UInt64
    /// The English description ("" when the file has none).
    public var description: String
    public var languages: [String]
    public var binaryFormatMajorVersion: Int
    public var binaryFormatMinorVersion: Int
}

/// A database that could not be opened: the path and libmaxminddb's reason.
public struct GeoDatabaseError: Error, CustomStringConvertible, Equatable {
    /// The file that was asked for.
    public var path: String
    /// libmaxminddb status code (`MMDB_*_ERROR`).
    public var code: Int
    /// `MMDB_strerror` text, with the system error for I/O failures.
    public var message: String

    public var description: String { "cannot open geo database \(path): \(message)" }
}

/// A MaxMind DB file (GeoLite2/GeoIP2-City, DB-IP City Lite or Lodestar's own) read through libmaxminddb.
///
/// The file is memory-mapped and read-only, so lookups may run on any number of threads at once. Decoded locations
/// are cached by data-section offset, so each distinct record is decoded once (until the bounded cache is cleared).
public final class GeoDatabase: GeoLocator, @unchecked Sendable {
    /// The path the database was opened from.
    public let path: String
    let mmdb: UnsafeMutablePointer<MMDB_s>
    private let storedMetadata: GeoMetadata
    private let cache = Mutex<[UInt32: GeoLocation?]>([:])

    /// Most decoded records kept; the cache is emptied when it reaches this size.
    static let cacheLimit = 65_536

    /// The database's metadata.
    public var metadata: GeoMetadata { storedMetadata }

    /// Opens (memory-maps) the database at `path`; throws `GeoDatabaseError` when it is missing or not valid.
    public init(path: String) throws {
        let db = UnsafeMutablePointer<MMDB_s>.allocate(capacity: 1)
        db.initialize(to: MMDB_s())
        errno = 0
        let status = MMDB_open(path, UInt32(MMDB_MODE_MMAP), db)
        guard status == MMDB_SUCCESS else {
            let systemError = errno
            // MMDB_open frees what it allocated on failure; only our struct remains.
            db.deinitialize(count: 1)
            db.deallocate()
            var message = GeoDatabase.text(MMDB_strerror(status)) ?? "libmaxminddb error \(status)"
            if (status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR), systemError != 0,
               let reason = GeoDatabase.text(strerror(systemError)) {
                message += " (\(reason))"
            }
            throw GeoDatabaseError(path: path, code: Int(status), message: message)
        }
        self.path = path
        self.mmdb = db
        self.storedMetadata = GeoDatabase.readMetadata(db.pointee.metadata)
    }

    deinit {
        MMDB_close(mmdb)
        mmdb.deinitialize(count: 1)
        mmdb.deallocate()
    }

    /// Looks `address` up. Never fails: libmaxminddb errors (e.g. a corrupt tree, or an IPv6 address in an IPv4-only
    /// database) give a nil location with prefix length 0.
    public func lookup(_ address: IPAddress) -> GeoLookup {
        var status: Int32 = MMDB_SUCCESS
        let result: MMDB_lookup_result_s
        switch address {
        case .v4(let v):
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_addr.s_addr = v.bigEndian
            result = withUnsafePointer(to: &sa) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { MMDB_lookup_sockaddr(mmdb, $0, &status) }
            }
        case .v6(let hi, let lo):
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            withUnsafeMutableBytes(of: &sa.sin6_addr) { raw in
                raw.storeBytes(of: hi.bigEndian, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: lo.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            result = withUnsafePointer(to: &sa) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { MMDB_lookup_sockaddr(mmdb, $0, &status) }
            }
        }
        guard status == MMDB_SUCCESS else { return GeoLookup(location: nil, prefixLength: 0) }

        // libmaxminddb counts IPv4 lookups in an IPv6 tree from the root, 96 bits above the IPv4 subtree.
        var length = Int(result.netmask)
        if address.isIPv4 && storedMetadata.ipVersion == 6 { length -= 96 }
        length = min(max(length, 0), address.bitWidth)

        guard result.found_entry else { return GeoLookup(location: nil, prefixLength: length) }
        let offset = result.entry.offset
        if let cached = cache.withLock({ $0[offset] }) {
            return GeoLookup(location: cached, prefixLength: length)
        }
        let decoded = decode(result.entry)
        cache.withLock { entries in
            if entries.count >= GeoDatabase.cacheLimit { entries.removeAll(keepingCapacity: true) }
            entries[offset] = decoded
        }
        return GeoLookup(location: decoded, prefixLength: length)
    }

    /// Number of decoded records currently cached (for tests and diagnostics).
    var cachedRecordCount: Int { cache.withLock { $0.count } }

    /// Reads the GeoLite2-City fields of one data record; nil without both coordinates (in range) or on any
    /// decode error.
    func decode(_ entry: MMDB_entry_s) -> GeoLocation? {
        var start = entry
        var data = MMDB_entry_data_s()
        func value(_ path: CPath) -> MMDB_entry_data_s? {
            guard MMDB_aget_value(&start, &data, path.pointer) == MMDB_SUCCESS, data.has_data else { return nil }
            return data
        }
        func number(_ path: CPath) -> Double? {
            guard let d = value(path) else { return nil }
            let n: Double
            switch d.type {
            case UInt32(MMDB_DATA_TYPE_DOUBLE): n = d.double_value
            case UInt32(MMDB_DATA_TYPE_FLOAT): n = Double(d.float_value)
            default: return nil
            }
            return n.isFinite ? n : nil
        }
        func string(_ path: CPath) -> String? {
            guard let d = value(path), d.type == UInt32(MMDB_DATA_TYPE_UTF8_STRING), d.data_size > 0,
                  let chars = d.utf8_string else { return nil }
            let buffer = UnsafeRawBufferPointer(start: UnsafeRawPointer(chars), count: Int(d.data_size))
            return String(decoding: buffer, as: UTF8.self)
        }

        guard let latitude = number(CPath.latitude), (-90.0...90.0).contains(latitude),
              let longitude = number(CPath.longitude), (-180.0...180.0).contains(longitude) else { return nil }
        return GeoLocation(latitude: latitude, longitude: longitude,
                           country: string(CPath.country) ?? string(CPath.registeredCountry),
                           continent: string(CPath.continent),
                           city: string(CPath.city))
    }

    private static func readMetadata(_ md: MMDB_metadata_s) -> GeoMetadata {
        var description = ""
        if let list = md.description.descriptions {
            for i in 0..<md.description.count {
                guard let item = list[i]?.pointee, text(item.language) == "en" else { continue }
                description = text(item.description) ?? ""
                break
            }
        }
        var languages = [String]()
        if let names = md.languages.names {
            for i in 0..<md.languages.count {
                if let name = text(names[i]) { languages.append(name) }
            }
        }
        return GeoMetadata(databaseType: text(md.database_type) ?? "",
                           ipVersion: Int(md.ip_version),
                           nodeCount: Int(md.node_count),
                           recordSize: Int(md.record_size),
                           buildEpoch: md.build_epoch,
                           description: description,
                           languages: languages,
                           binaryFormatMajorVersion: Int(md.binary_format_major_version),
                           binaryFormatMinorVersion: Int(md.binary_format_minor_version))
    }

    private static func text(_ p: UnsafePointer<CChar>?) -> String? { p.map { String(cString: $0) } }
}

/// A NULL-terminated `const char *const path[]` for `MMDB_aget_value`, built once and kept for the process.
private final class CPath: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UnsafePointer<CChar>?>

    init(_ components: String...) {
        pointer = .allocate(capacity: components.count + 1)
        for (i, component) in components.enumerated() { pointer[i] = UnsafePointer(strdup(component)) }
        pointer[components.count] = nil
    }

    static let latitude = CPath("location", "latitude")
    static let longitude = CPath("location", "longitude")
    static let country = CPath("country", "iso_code")
    static let registeredCountry = CPath("registered_country", "iso_code")
    static let continent = CPath("continent", "code")
    static let city = CPath("city", "names", "en")
}
