import Foundation
import LodestarGeo
import LodestarSelection
import LodestarTopology

/// What a response depends on, so a per-thread packet cache can reuse it (in the manner of PowerDNS's packet cache).
/// Two queries with equal keys get byte-identical responses except for the message ID, provided the response was
/// `reusable` and neither the zone (`Authority`) nor the health view changed in between.
public struct AnswerKey: Hashable, Sendable {
    /// RD/CD flags, the question as sent (case kept: it is echoed), the EDNS parameters that shape the reply,
    /// and last the source address when the answer may depend on it (no ECS, or ECS with SOURCE 0).
    let bytes: [UInt8]
    /// FNV-1a of `bytes`, computed once so dictionary probes hash one word instead of every byte.
    let digest: UInt64

    init(bytes: [UInt8]) {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        self.bytes = bytes
        digest = h
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(digest)
    }

    public static func == (a: AnswerKey, b: AnswerKey) -> Bool {
        guard a.digest == b.digest, a.bytes.count == b.bytes.count else { return false }
        return a.bytes.withUnsafeBytes { x in
            b.bytes.withUnsafeBytes { y in
                guard let p = x.baseAddress, let q = y.baseAddress else { return x.count == 0 }
                return memcmp(p, q, x.count) == 0
            }
        }
    }
}

extension Authority {
    /// Computes the cache key of a plain query, or nil for anything unusual (those always take the full path):
    /// QR/TC set, an opcode other than QUERY, counts other than 1/0/0/(0|1), compression in the question,
    /// an additional record that is not a well-formed root OPT, or two ECS options. Bytes are bounds-checked.
    /// EDNS cookies and unknown options are left out of the key because the reply does not depend on them.
    public func answerKey(for packet: [UInt8], from client: IPAddress, transport: DNSTransport) -> AnswerKey? {
        packet.withUnsafeBytes { answerKey(for: $0, from: client, transport: transport) }
    }

    /// The same over a received datagram in place (no copy). Every read below is preceded by a check against
    /// `packet.count`; the fuzzer drives this code through the `[UInt8]` overload under AddressSanitizer.
    public func answerKey(for packet: UnsafeRawBufferPointer, from client: IPAddress, transport: DNSTransport) -> AnswerKey? {
        var key = [UInt8]()
        return answerKey(for: packet, from: client, transport: transport, reusing: &key)
    }

    /// The same, written into `key`'s storage (emptied first): a caller that keeps one buffer and lets each key go
    /// before the next (a lookup that misses, say) allocates nothing per query; a key kept (stored in a cache) shares
    /// the storage, and the next write copies it.
    public func answerKey(for packet: UnsafeRawBufferPointer, from client: IPAddress, transport: DNSTransport,
                          reusing key: inout [UInt8]) -> AnswerKey? {
        let n = packet.count
        guard n >= 17 else { return nil }
        let flags = UInt16(packet[2]) << 8 | UInt16(packet[3])
        guard flags & 0xFA00 == 0 else { return nil }  // QR, opcode and TC all zero
        guard packet[4] == 0, packet[5] == 1, packet[6] == 0, packet[7] == 0, packet[8] == 0, packet[9] == 0,
              packet[10] == 0, packet[11] <= 1 else { return nil }
        let hasOPT = packet[11] == 1
        key.removeAll(keepingCapacity: true)
        key.reserveCapacity(n + 24)
        key.append(UInt8(flags >> 8) & 0x01)  // RD
        key.append(UInt8(flags & 0xFF) & 0x10)  // CD
        key.append(transport == .udp ? 0 : 1)
        // The question: uncompressed labels, then type and class.
        var i = 12
        while true {
            guard i < n else { return nil }
            let len = Int(packet[i])
            if len == 0 { break }
            guard len <= 63, i - 12 + len + 2 <= 255 else { return nil }
            i += len + 1
        }
        i += 1
        guard i + 4 <= n else { return nil }
        i += 4
        key.append(contentsOf: UnsafeRawBufferPointer(rebasing: packet[12..<i]))
        var dependsOnSource = true
        if hasOPT {
            guard let ecsLocates = appendOPT(packet, at: i, transport: transport, to: &key) else { return nil }
            dependsOnSource = !ecsLocates
        } else {
            guard i == n else { return nil }
            key.append(0)
        }
        if dependsOnSource {
            switch client {
            case .v4(let v):
                key.append(4)
                withUnsafeBytes(of: v) { key.append(contentsOf: $0) }
            case .v6(let hi, let lo):
                key.append(6)
                withUnsafeBytes(of: hi) { key.append(contentsOf: $0) }
                withUnsafeBytes(of: lo) { key.append(contentsOf: $0) }
            }
        } else {
            key.append(0)
        }
        return AnswerKey(bytes: key)
    }

    /// The key's part from the query's OPT record at `i` (the last record): the payload limit, version and DO, NSID
    /// and the ECS option. Returns whether an ECS option with a source prefix locates the client (then the source
    /// address is not part of the key), or nil for a malformed OPT or two ECS options.
    private func appendOPT(_ packet: UnsafeRawBufferPointer, at i: Int, transport: DNSTransport, to key: inout [UInt8]) -> Bool? {
        let n = packet.count
        // Root owner, TYPE 41, CLASS = payload, TTL = ext-rcode/version/flags, RDLENGTH, options.
        guard i + 11 <= n, packet[i] == 0, packet[i + 1] == 0, packet[i + 2] == 41 else { return nil }
        let payload = Int(packet[i + 3]) << 8 | Int(packet[i + 4])
        let limit = transport == .udp ? min(max(512, payload), maxUDPPayload) : 65535
        key.append(1)
        key.append(UInt8(limit >> 8))
        key.append(UInt8(limit & 0xFF))
        key.append(packet[i + 6])  // version
        key.append(packet[i + 7] & 0x80)  // DO
        let rdlen = Int(packet[i + 9]) << 8 | Int(packet[i + 10])
        var o = i + 11
        guard o + rdlen == n else { return nil }
        var sawECS = false, ecsLocates = false
        while o < n {
            guard o + 4 <= n else { return nil }
            let code = UInt16(packet[o]) << 8 | UInt16(packet[o + 1])
            let len = Int(packet[o + 2]) << 8 | Int(packet[o + 3])
            guard o + 4 + len <= n else { return nil }
            switch code {
            case EDNSOptionCode.nsid:
                key.append(3)
            case EDNSOptionCode.clientSubnet:
                guard !sawECS else { return nil }
                sawECS = true
                key.append(8)
                key.append(UInt8(truncatingIfNeeded: len))
                key.append(contentsOf: UnsafeRawBufferPointer(rebasing: packet[(o + 4)..<(o + 4 + len)]))
                // SOURCE PREFIX-LENGTH > 0: the subnet, not the source address, locates the client.
                if len >= 3, packet[o + 6] > 0 { ecsLocates = true }
            default:
                break
            }
            o += 4 + len
        }
        return ecsLocates
    }

    /// The health view's change counter (see `HealthView.generation`).
    public var healthGeneration: UInt64 { health.generation }
}
