#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import Synchronization

/// Counters and gauges of a `DiskStore`.
public struct DiskStoreStats: Sendable, Equatable {
    /// Indexed variants (one file each).
    public var entries: Int
    /// The sum of the indexed files' sizes (what `capacityBytes` bounds).
    public var bytes: Int
    /// The configured byte capacity.
    public var capacityBytes: Int
    /// Lookups that returned a response.
    public var hits: Int
    /// Lookups that returned nil (no matching variant, or its file was missing, unreadable or corrupt).
    public var misses: Int
    /// Successful `store` calls.
    public var stores: Int
    /// Entries removed to make room (LRU), at run time or at start-up when the files exceed the capacity.
    public var evictions: Int
    /// Entries removed by `purge(key:)` and `purge(prefix:)`.
    public var purges: Int
    /// Files deleted as partial, corrupt, foreign, misplaced or left-over temp files (at start-up and at lookup).
    public var corruptDropped: Int
    /// `store` calls that failed on a file-system call (disk full, permissions); nothing was stored.
    public var writeErrors: Int

    /// Creates a stats snapshot.
    public init(
        entries: Int = 0, bytes: Int = 0, capacityBytes: Int = 0, hits: Int = 0, misses: Int = 0, stores: Int = 0,
        evictions: Int = 0, purges: Int = 0, corruptDropped: Int = 0, writeErrors: Int = 0
    ) {
        self.entries = entries
        self.bytes = bytes
        self.capacityBytes = capacityBytes
        self.hits = hits
        self.misses = misses
        self.stores = stores
        self.evictions = evictions
        self.purges = purges
        self.corruptDropped = corruptDropped
        self.writeErrors = writeErrors
    }
}

/// A thread-safe, byte-bounded cache tier on disk with the shape of `MemoryStore`: one file per Vary variant,
/// an in-memory index (LRU, variant selection), atomic writes (temp file + rename) and checksummed reads.
///
/// Files live at `<directory>/<2 hex>/<32 hex>`, named by a 128-bit hash of key + NUL + secondary key; the format
/// is described at `DiskEntryFormat`. Lookups and stores do blocking file IO: call them off the event loops.
/// Only one `DiskStore` may use a directory at a time (enforced with flock(2) on `<directory>/.lock`).
public final class DiskStore: Sendable {
    /// The cache directory.
    public let directory: String
    /// The bound on the sum of file sizes.
    public let capacityBytes: Int
    /// The largest single entry cost (`CachedResponse.cost`, as in `MemoryStore`) accepted.
    public let maxObjectBytes: Int
    /// Whether each new file is fsync(2)ed before it is renamed into place.
    public let syncWrites: Bool

    private let state: Mutex<DiskIndex>
    private let tempCounter = Atomic<UInt64>(0)
    private let lockDescriptor: Int32

    /// Creates the directory if needed (mkdir -p, mode 0700) and rebuilds the index by scanning the files (reading
    /// only each file's header section); partial/corrupt/foreign files are deleted and counted in corruptDropped;
    /// temp files from an interrupted write are removed. Throws a `DiskStoreError` (with the path and errno text)
    /// when the directory cannot be created, locked or read.
    ///
    /// Recency after a restart follows file modification times (newest most recent); files beyond the capacity
    /// are evicted oldest first. Only the two-hex-digit subdirectories are scanned; other names are left alone.
    public init(directory: String, capacityBytes: Int, maxObjectBytes: Int, syncWrites: Bool = false) throws {
        guard !directory.isEmpty else {
            throw DiskStoreError("use directory", path: directory, code: EINVAL, reason: "empty path")
        }
        let capacity = max(0, capacityBytes)
        self.directory = directory
        self.capacityBytes = capacity
        self.maxObjectBytes = max(0, maxObjectBytes)
        self.syncWrites = syncWrites
        try DiskIO.makeDirectories(directory)
        let fd = try DiskIO.lockDirectory(directory)
        var index = DiskIndex(capacity: capacity)
        do {
            try Self.scan(directory: directory, into: &index)
        } catch {
            _ = close(fd)
            throw error
        }
        for victim in index.evict(keeping: DiskIndex.none) {
            _ = unlink(Self.path(directory, victim))
        }
        self.lockDescriptor = fd
        self.state = Mutex(index)
    }

    deinit {
        _ = close(lockDescriptor)
    }

    /// The variant of `key` selected by the request's headers (newest matching, from the in-memory index), read
    /// from its file with the checksum and the stored keys verified; refreshes its recency.
    ///
    /// A missing, corrupt or foreign file is deleted, counted in `corruptDropped` and gives nil. Cost: one open,
    /// fstat and read of the whole file, and a CRC-32 over it; the body is returned as one `ByteBuffer`.
    public func lookup(key: String, requestHeaders: HTTPFields) -> CachedResponse? {
        let picked = state.withLock { s -> (slot: Int, name: DiskEntryName, secondaryKey: String, generation: UInt64)? in
            guard let slot = s.select(key: key, requestHeaders: requestHeaders), let entry = s.slots[slot] else {
                s.misses += 1
                return nil
            }
            return (slot, entry.name, entry.secondaryKey, entry.generation)
        }
        guard let picked else { return nil }
        let path = Self.path(directory, picked.name)
        switch Self.read(path: path, key: key, secondaryKey: picked.secondaryKey, limit: capacityBytes) {
        case .found(let response):
            state.withLock { s in
                s.hits += 1
                if s.slots[picked.slot]?.generation == picked.generation { s.moveToFront(picked.slot) }
            }
            return response
        case .bad:
            state.withLock { s in
                s.misses += 1
                // Drop it only if no store replaced the variant meanwhile (the file may be the new one).
                if s.slots[picked.slot]?.generation == picked.generation {
                    s.remove(picked.slot)
                    _ = unlink(path)
                    s.corruptDropped += 1
                }
            }
            return nil
        case .unavailable:
            state.withLock { $0.misses += 1 }
            return nil
        }
    }

    /// Stores a response under `key`, replacing the variant with the same secondary key and evicting LRU entries
    /// as needed; the file is written to a temp file in the same directory and renamed into place (atomic).
    ///
    /// Returns false (nothing changes) when the cost exceeds `maxObjectBytes` or the capacity, the file would
    /// exceed the capacity, for `Vary: *`, when a file-system call fails (counted in `writeErrors`), or when a
    /// purge covering `key` ran while the file was being written (so a purge is never undone by a slow store).
    @discardableResult
    public func store(key: String, response: CachedResponse) -> Bool {
        let vary = HeaderFields.combined("vary", in: response.headers)
        guard let secondary = VaryKey.secondaryKey(vary: vary, requestHeaders: response.varyRequestHeaders) else {
            return false
        }
        let cost = response.cost
        guard cost <= maxObjectBytes, cost <= capacityBytes else { return false }
        let image = DiskEntryFormat.encode(key: key, secondaryKey: secondary, vary: vary, response: response)
        let size = image.readableBytes
        guard size <= capacityBytes else { return false }

        let name = DiskEntryName(key: key, secondaryKey: secondary)
        let startEpoch = state.withLock { $0.purgeEpoch }
        let subdirectory = directory + "/" + name.directory
        let finalPath = subdirectory + "/" + name.hex
        let serial = tempCounter.wrappingAdd(1, ordering: .relaxed).oldValue
        let tempPath = subdirectory + "/" + DiskStore.tempPrefix + name.hex + ".\(getpid()).\(serial)"
        var failure = DiskIO.writeNewFile(tempPath, image, sync: syncWrites)
        if failure == ENOENT {
            _ = mkdir(subdirectory, 0o700)
            failure = DiskIO.writeNewFile(tempPath, image, sync: syncWrites)
        }
        guard failure == 0 else {
            state.withLock { $0.writeErrors += 1 }
            return false
        }
        // Rename and index update under one lock, so the index always describes the file that won.
        return state.withLock { s -> Bool in
            if s.purged(key: key, since: startEpoch) {
                _ = unlink(tempPath)
                return false
            }
            guard rename(tempPath, finalPath) == 0 else {
                _ = unlink(tempPath)
                s.writeErrors += 1
                return false
            }
            if let old = s.byName[name] { s.remove(old) }  // its file was just replaced
            let slot = s.insert(
                DiskIndexEntry(
                    key: key, secondaryKey: secondary, vary: vary, responseTime: response.responseTime, name: name,
                    size: size, generation: s.nextGeneration))
            s.nextGeneration &+= 1
            s.stores += 1
            for victim in s.evict(keeping: slot) {
                _ = unlink(Self.path(directory, victim))
            }
            return true
        }
    }

    /// Removes every variant of a primary key and their files; returns how many were removed.
    @discardableResult
    public func purge(key: String) -> Int {
        state.withLock { s -> Int in
            s.logPurge(key, isPrefix: false)
            let names = s.purge(key: key)
            for name in names { _ = unlink(Self.path(directory, name)) }
            return names.count
        }
    }

    /// Removes every variant of every primary key starting with `prefix` and their files; returns how many.
    @discardableResult
    public func purge(prefix: String) -> Int {
        state.withLock { s -> Int in
            s.logPurge(prefix, isPrefix: true)
            var removed = 0
            for key in s.index.keys.filter({ $0.hasPrefix(prefix) }) {
                let names = s.purge(key: key)
                for name in names { _ = unlink(Self.path(directory, name)) }
                removed += names.count
            }
            return removed
        }
    }

    /// A consistent snapshot of the counters.
    public var stats: DiskStoreStats {
        state.withLock { s in
            DiskStoreStats(
                entries: s.count, bytes: s.bytes, capacityBytes: s.capacity, hits: s.hits, misses: s.misses,
                stores: s.stores, evictions: s.evictions, purges: s.purges, corruptDropped: s.corruptDropped,
                writeErrors: s.writeErrors)
        }
    }

    /// The file path of an entry (for tests and tools).
    public func filePath(key: String, secondaryKey: String) -> String {
        Self.path(directory, DiskEntryName(key: key, secondaryKey: secondaryKey))
    }

    /// The name prefix of temp files (removed at start-up).
    static let tempPrefix = ".tmp."

    /// `<directory>/<2 hex>/<32 hex>`.
    static func path(_ directory: String, _ name: DiskEntryName) -> String {
        directory + "/" + name.directory + "/" + name.hex
    }

    /// What reading an entry file gave.
    enum ReadResult {
        /// A valid file for the expected key and secondary key.
        case found(CachedResponse)
        /// Missing, truncated, oversized, failing a checksum, or holding another key: drop it.
        case bad
        /// Could not be opened for a reason that says nothing about the file (e.g. out of descriptors).
        case unavailable
    }

    /// Reads and verifies an entry file (at most `limit` bytes) expected to hold `key` / `secondaryKey`.
    static func read(path: String, key: String, secondaryKey: String, limit: Int) -> ReadResult {
        let fd = DiskIO.openRead(path)
        guard fd >= 0 else { return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? .bad : .unavailable }
        defer { _ = close(fd) }
        guard let status = DiskIO.fstatus(fd), status.isRegular,
              status.size >= DiskEntryFormat.fixedBytes, status.size <= limit,
              let image = DiskIO.read(fd, count: status.size, offset: 0),
              let parsed = DiskEntryFormat.parseFile(image),
              parsed.header.key == key, parsed.header.secondaryKey == secondaryKey
        else { return .bad }
        let header = parsed.header
        let body = parsed.body
        return .found(
            CachedResponse(
                status: header.status, headers: header.headers.map { (name: $0.name, value: $0.value) },
                body: body.readableBytes == 0 ? [] : [body], requestTime: header.requestTime,
                responseTime: header.responseTime,
                varyRequestHeaders: header.varyRequestHeaders.map { (name: $0.name, value: $0.value) }))
    }

    /// Reads and verifies only the header section of an entry file; nil when it is not a consistent entry.
    static func readHeader(path: String, limit: Int) -> DiskEntryFormat.Header? {
        let fd = DiskIO.openRead(path)
        guard fd >= 0 else { return nil }
        defer { _ = close(fd) }
        guard let status = DiskIO.fstatus(fd), status.isRegular,
              status.size >= DiskEntryFormat.fixedBytes, status.size <= limit,
              let prefix = DiskIO.read(fd, count: DiskEntryFormat.prefixBytes, offset: 0),
              let headerLength = DiskEntryFormat.headerLength(prefix: prefix),
              headerLength <= status.size - DiskEntryFormat.fixedBytes,
              let start = DiskIO.read(fd, count: DiskEntryFormat.prefixBytes + headerLength + 12, offset: 0)
        else { return nil }
        return DiskEntryFormat.parseHeader(start, fileSize: status.size)
    }

    /// Scans the two-hex-digit subdirectories, indexing valid entries oldest first and deleting everything else.
    private static func scan(directory: String, into index: inout DiskIndex) throws {
        var found: [(entry: DiskIndexEntry, mtime: Int64)] = []
        for sub in try DiskIO.list(directory).sorted() where isSubdirectoryName(sub) {
            let subPath = directory + "/" + sub
            guard let st = DiskIO.lstatus(subPath), st.isDirectory else { continue }
            for file in try DiskIO.list(subPath) {
                let path = subPath + "/" + file
                guard let st = DiskIO.lstatus(path), !st.isDirectory else { continue }
                guard !file.hasPrefix(tempPrefix),
                      let name = DiskEntryName(hex: file), name.directory == sub, st.isRegular,
                      let header = readHeader(path: path, limit: index.capacity),
                      DiskEntryName(key: header.key, secondaryKey: header.secondaryKey) == name,
                      consistent(header)
                else {
                    _ = unlink(path)
                    index.corruptDropped += 1
                    continue
                }
                let entry = DiskIndexEntry(
                    key: header.key, secondaryKey: header.secondaryKey, vary: header.vary,
                    responseTime: header.responseTime, name: name, size: st.size, generation: 0)
                found.append((entry, st.mtimeNanos))
            }
        }
        found.sort { $0.mtime != $1.mtime ? $0.mtime < $1.mtime : $0.entry.name.hex < $1.entry.name.hex }
        for item in found {
            var entry = item.entry
            entry.generation = index.nextGeneration
            index.nextGeneration &+= 1
            _ = index.insert(entry)
        }
    }

    /// Whether the stored vary value and secondary key agree with the stored header fields.
    private static func consistent(_ header: DiskEntryFormat.Header) -> Bool {
        let headers: HTTPFields = header.headers.map { (name: $0.name, value: $0.value) }
        let varyRequest: HTTPFields = header.varyRequestHeaders.map { (name: $0.name, value: $0.value) }
        return HeaderFields.combined("vary", in: headers) == header.vary
            && VaryKey.secondaryKey(vary: header.vary, requestHeaders: varyRequest) == header.secondaryKey
    }

    /// Two lowercase hex digits.
    private static func isSubdirectoryName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return bytes.count == 2 && bytes.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}
