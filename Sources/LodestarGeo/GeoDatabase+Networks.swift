import CMaxMindDB
import LodestarTopology
#if canImport(Glibc)
import Glibc
#endif

/// A search tree that cannot be walked (a record pointing nowhere, or deeper than the address width).
public struct GeoTreeError: Error, CustomStringConvertible {
    public var description: String
}

extension GeoDatabase {
    /// One network of the search tree: its first address as a 128-bit number (IPv4 in the low 32 bits), its prefix
    /// length, and the data-section offset of its record (nil: the tree has no data there).
    public struct Network: Sendable, Equatable {
        public var start: UInt128
        public var length: Int
        public var offset: UInt32?
        /// The IPv6 tree points back into its IPv4 subtree here (::ffff:0:0/96, 2002::/16 and the like): the 32
        /// bits after the prefix are looked up as an IPv4 address.
        public var ipv4Alias = false
    }

    /// Calls `body` for every network of the IPv4 space (`v4`) or of the whole IPv6 space, in address order, each
    /// once: the networks tile the space. In an IPv6 tree the IPv4 space is the ::/96 subtree; an IPv4 tree has no
    /// IPv6 space (one empty network). Throws `GeoTreeError` on a corrupt tree.
    public func forEachNetwork(v4: Bool, _ body: (Network) -> Void) throws {
        let width = v4 ? 32 : 128
        var node: UInt32 = 0
        var record = MMDB_search_node_s()
        if !v4 && metadata.ipVersion == 4 {
            body(Network(start: 0, length: 0, offset: nil))
            return
        }
        // The IPv4 subtree: 96 zero bits down from the root.
        var ipv4Root: UInt32?
        if metadata.ipVersion == 6 {
            var n: UInt32 = 0
            ipv4Root = 0
            for _ in 0..<96 {
                guard MMDB_read_node(mmdb, n, &record) == MMDB_SUCCESS,
                      Int32(record.left_record_type) == MMDB_RECORD_TYPE_SEARCH_NODE else { ipv4Root = nil; break }
                n = UInt32(truncatingIfNeeded: record.left_record)
            }
            if ipv4Root != nil { ipv4Root = n }
        }
        if v4 && metadata.ipVersion == 6 {
            for _ in 0..<96 {
                guard MMDB_read_node(mmdb, node, &record) == MMDB_SUCCESS else { throw GeoTreeError(description: "unreadable node \(node)") }
                switch Int32(record.left_record_type) {
                case MMDB_RECORD_TYPE_SEARCH_NODE: node = UInt32(truncatingIfNeeded: record.left_record)
                case MMDB_RECORD_TYPE_DATA: return body(Network(start: 0, length: 0, offset: record.left_record_entry.offset))
                case MMDB_RECORD_TYPE_EMPTY: return body(Network(start: 0, length: 0, offset: nil))
                default: throw GeoTreeError(description: "invalid record above the IPv4 subtree")
                }
            }
        }
        // Depth-first, left (0) before right (1): leaves wait on the stack in their place, so networks come out in
        // address order.
        enum Item { case node(UInt32, depth: Int, start: UInt128), leaf(Network) }
        var stack: [Item] = [.node(node, depth: 0, start: 0)]
        while let item = stack.popLast() {
            guard case .node(let n, let depth, let start) = item else {
                if case .leaf(let network) = item { body(network) }
                continue
            }
            guard depth < width else { throw GeoTreeError(description: "search tree deeper than \(width) bits") }
            guard MMDB_read_node(mmdb, n, &record) == MMDB_SUCCESS else { throw GeoTreeError(description: "unreadable node \(n)") }
            func push(_ type: UInt8, _ value: UInt64, _ offset: UInt32, _ childStart: UInt128) throws {
                switch Int32(type) {
                case MMDB_RECORD_TYPE_SEARCH_NODE:
                    let child = UInt32(truncatingIfNeeded: value)
                    if !v4, child == ipv4Root, depth + 1 + 32 <= width {
                        stack.append(.leaf(Network(start: childStart, length: depth + 1, offset: nil, ipv4Alias: true)))
                    } else {
                        stack.append(.node(child, depth: depth + 1, start: childStart))
                    }
                case MMDB_RECORD_TYPE_DATA: stack.append(.leaf(Network(start: childStart, length: depth + 1, offset: offset)))
                case MMDB_RECORD_TYPE_EMPTY: stack.append(.leaf(Network(start: childStart, length: depth + 1, offset: nil)))
                default: throw GeoTreeError(description: "invalid record in node \(n)")
                }
            }
            try push(record.right_record_type, record.right_record, record.right_record_entry.offset,
                     start | (UInt128(1) << (width - 1 - depth)))
            try push(record.left_record_type, record.left_record, record.left_record_entry.offset, start)
        }
    }

    /// Lets the kernel take back the pages of the mapped file read so far (they come back from the page cache when
    /// read again): a walk over the whole tree then does not hold the whole file in the process's memory.
    public func releasePages() {
        guard let base = mmdb.pointee.file_content, mmdb.pointee.file_size > 0 else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base), Int(mmdb.pointee.file_size), MADV_DONTNEED)
    }

    /// Gives memory freed after a large walk back to the system (glibc otherwise keeps it in its free lists).
    public static func returnFreedMemory() {
        _ = lodestar_malloc_trim()
    }

    /// The location of the record at a data-section offset (decoded as `lookup` does).
    public func location(atOffset offset: UInt32) -> GeoLocation? {
        decode(MMDB_entry_s(mmdb: mmdb, offset: offset))
    }
}
