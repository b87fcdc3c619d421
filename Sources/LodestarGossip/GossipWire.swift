import Crypto

/// The shared secrets of a cluster: the first key signs, every key verifies (so keys can be rotated: add the new key
/// second everywhere, then first, then drop the old one).
public struct GossipKeyring: Sendable {
    /// The key bytes, signing key first (kept as bytes: `SymmetricKey` is not `Sendable`).
    let secrets: [[UInt8]]

    /// The keys, signing key first.
    var keys: [SymmetricKey] { secrets.map { SymmetricKey(data: $0) } }

    /// How many keys are accepted.
    public var count: Int { secrets.count }

    /// Keys must be at least 16 bytes; at least one is needed.
    public init(secrets: [[UInt8]]) throws(GossipKeyError) {
        guard !secrets.isEmpty else { throw GossipKeyError(reason: "no key given") }
        for (i, s) in secrets.enumerated() where s.count < 16 {
            throw GossipKeyError(reason: "key \(i + 1) has \(s.count) bytes; at least 16 are needed")
        }
        self.secrets = secrets
    }

    /// Parses a key file or variable: one key per line as hex (an even number of hex digits) or base64; blank lines
    /// and `#` comments are skipped. Errors name the line.
    public static func parse(_ text: String) throws(GossipKeyError) -> GossipKeyring {
        var secrets: [[UInt8]] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let bytes = hexBytes(line) ?? base64Bytes(line) else {
                throw GossipKeyError(reason: "line \(n + 1): not hex or base64")
            }
            secrets.append(bytes)
        }
        return try GossipKeyring(secrets: secrets)
    }

    /// Hex digits to bytes; nil unless the whole string is an even number of hex digits.
    static func hexBytes(_ s: Substring) -> [UInt8]? {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = hexValue(u[i]), let lo = hexValue(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }

    /// Standard base64 (with padding) to bytes; nil when malformed.
    static func base64Bytes(_ s: Substring) -> [UInt8]? {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for (i, c) in u.enumerated() {
            let v: UInt32
            switch c {
            case 0x41...0x5A: v = UInt32(c - 0x41)
            case 0x61...0x7A: v = UInt32(c - 0x61 + 26)
            case 0x30...0x39: v = UInt32(c - 0x30 + 52)
            case 0x2B: v = 62
            case 0x2F: v = 63
            case 0x3D:
                guard i >= u.count - 2, u[i...].allSatisfy({ $0 == 0x3D }) else { return nil }
                return out
            default: return nil
            }
            buffer = buffer << 6 | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return out
    }
}

/// A key that cannot be used, with the reason.
public struct GossipKeyError: Error, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { "gossip key: \(reason)" }
}

/// Why a packet was dropped (each is counted by the transport; none changes membership).
public enum GossipDropReason: String, Error, Sendable, Hashable, CaseIterable {
    /// Shorter than a header and a tag, or longer than `GossipWire.maxPacketBytes`.
    case size
    /// A version byte this node does not speak.
    case version
    /// The HMAC matched no key (forged, corrupted, or another cluster).
    case authentication
    /// Authentic but not decodable (a bug or an incompatible peer).
    case malformed
    /// A sequence number already seen, or too old for the window.
    case replay
    /// The sender's clock (in its sequence number) is too far from this node's.
    case skew
}

/// One authenticated packet.
public struct GossipPacket: Sendable, Hashable {
    /// Who sent it (authenticated: only key holders can claim a name).
    public var sender: SWIMNodeID
    /// The sender's sequence number: milliseconds since the epoch times 1024 plus a counter.
    public var sequence: UInt64
    /// The SWIM message.
    public var message: SWIMMessage
}

/// The gossip wire format: `version(1) | sender length(1) | sender | sequence(8) | message | HMAC-SHA256(32)`,
/// the tag covering every byte before it. Integers are big-endian. Packets stay within `maxPacketBytes`.
public enum GossipWire {
    /// The format version this node speaks.
    public static let version: UInt8 = 1
    /// The largest packet sent or accepted (fits an unfragmented UDP datagram on common paths).
    public static let maxPacketBytes = 1400
    /// The HMAC-SHA256 tag length.
    public static let tagBytes = 32
    /// Most gossip entries (or sync state entries) in one message.
    public static let maxEntries = 255
    /// Largest metadata payload carried.
    public static let maxMetadataBytes = 1024

    /// Encodes and signs with the keyring's first key; nil when the message does not fit `maxPacketBytes` (or has an
    /// id or payload over the format's limits).
    public static func encode(_ message: SWIMMessage, from sender: SWIMNodeID, sequence: UInt64,
                              keyring: GossipKeyring) -> [UInt8]? {
        var w = WireWriter()
        w.byte(version)
        guard w.string(sender.name) else { return nil }
        w.u64(sequence)
        guard encodeMessage(message, into: &w), w.bytes.count + tagBytes <= maxPacketBytes,
              let secret = keyring.secrets.first
        else { return nil }
        w.bytes.append(contentsOf: tag(w.bytes, secret: secret))
        return w.bytes
    }

    /// The size `encode` would give the message (header, body and tag; no signing), for accounting in simulations.
    public static func encodedSize(_ message: SWIMMessage, from sender: SWIMNodeID) -> Int {
        var w = WireWriter()
        w.byte(version)
        _ = w.string(sender.name)
        w.u64(0)
        _ = encodeMessage(message, into: &w)
        return w.bytes.count + tagBytes
    }

    /// Encodes a message as one packet, or, for a full-state sync too large for one, as several: the state split over
    /// sync packets that each fit, the first keeping the message's reply flag and its piggybacked gossip, the rest
    /// marked as replies (so a receiver merges them all but answers only once). Empty when even one entry cannot fit.
    public static func encodeAll(_ message: SWIMMessage, from sender: SWIMNodeID, keyring: GossipKeyring,
                                 sequence: () -> UInt64) -> [[UInt8]] {
        if let one = encode(message, from: sender, sequence: sequence(), keyring: keyring) { return [one] }
        guard case .sync(let state, let isReply) = message.kind, state.count > 1 else { return [] }
        var packets: [[UInt8]] = []
        var chunk: [SWIMGossip] = []
        var first = true
        func flush() -> Bool {
            let m = SWIMMessage(.sync(state: chunk, isReply: first ? isReply : true), gossip: first ? message.gossip : [])
            guard let p = encode(m, from: sender, sequence: sequence(), keyring: keyring) else { return false }
            packets.append(p)
            first = false
            chunk = []
            return true
        }
        for entry in state {
            chunk.append(entry)
            let probe = SWIMMessage(.sync(state: chunk, isReply: true), gossip: first ? message.gossip : [])
            var w = WireWriter()
            w.byte(version)
            _ = w.string(sender.name)
            w.u64(0)
            if !encodeMessage(probe, into: &w) || w.bytes.count + tagBytes > maxPacketBytes {
                chunk.removeLast()
                guard !chunk.isEmpty, flush() else { return [] }
                chunk = [entry]
            }
        }
        if !chunk.isEmpty, !flush() { return [] }
        return packets
    }

    /// Appends the keyring's tag to `body` (an encoded header and message): how `encode` finishes, exposed so tests
    /// and the fuzzer can make authentic packets with arbitrary bodies.
    public static func sign(_ body: [UInt8], keyring: GossipKeyring) -> [UInt8] {
        guard let secret = keyring.secrets.first else { return body }
        return body + tag(body, secret: secret)
    }

    /// HMAC-SHA256 of `body` under `secret`.
    static func tag(_ body: [UInt8], secret: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret)))
    }

    /// Verifies the tag (against every key) before reading anything else, then decodes.
    public static func decode(_ packet: [UInt8], keyring: GossipKeyring) -> Result<GossipPacket, GossipDropReason> {
        guard packet.count >= 1 + 1 + 8 + 1 + tagBytes, packet.count <= maxPacketBytes else { return .failure(.size) }
        guard packet[0] == version else { return .failure(.version) }
        let body = packet[..<(packet.count - tagBytes)]
        let tag = packet[(packet.count - tagBytes)...]
        guard keyring.keys.contains(where: { HMAC<SHA256>.isValidAuthenticationCode(tag, authenticating: body, using: $0) }) else {
            return .failure(.authentication)
        }
        var r = WireReader(body)
        r.skip(1)
        guard let name = r.string(), !name.isEmpty, let sequence = r.u64(), let message = decodeMessage(&r), r.atEnd else {
            return .failure(.malformed)
        }
        return .success(GossipPacket(sender: SWIMNodeID(name), sequence: sequence, message: message))
    }

    // MARK: Message body

    static func encodeMessage(_ m: SWIMMessage, into w: inout WireWriter) -> Bool {
        switch m.kind {
        case .ping(let seq):
            w.byte(1)
            w.u64(seq)
        case .pingRequest(let seq, let target):
            w.byte(2)
            w.u64(seq)
            guard w.string(target.name) else { return false }
        case .ack(let seq):
            w.byte(3)
            w.u64(seq)
        case .nack(let seq):
            w.byte(4)
            w.u64(seq)
        case .sync(let state, let isReply):
            w.byte(isReply ? 6 : 5)
            guard encodeGossip(state, into: &w) else { return false }
        }
        return encodeGossip(m.gossip, into: &w)
    }

    static func encodeGossip(_ list: [SWIMGossip], into w: inout WireWriter) -> Bool {
        guard list.count <= maxEntries else { return false }
        w.byte(UInt8(list.count))
        for g in list {
            guard w.string(g.node.name), w.string(g.origin.name) else { return false }
            w.byte(g.status.rawValue)
            w.u64(g.incarnation)
            if let md = g.metadata {
                guard md.bytes.count <= maxMetadataBytes else { return false }
                w.byte(1)
                w.u64(md.version)
                w.u16(UInt16(md.bytes.count))
                w.bytes.append(contentsOf: md.bytes)
            } else {
                w.byte(0)
            }
        }
        return true
    }

    static func decodeMessage(_ r: inout WireReader) -> SWIMMessage? {
        guard let kind = r.byte() else { return nil }
        let k: SWIMMessage.Kind
        switch kind {
        case 1: guard let s = r.u64() else { return nil }; k = .ping(sequence: s)
        case 2:
            guard let s = r.u64(), let t = r.string(), !t.isEmpty else { return nil }
            k = .pingRequest(sequence: s, target: SWIMNodeID(t))
        case 3: guard let s = r.u64() else { return nil }; k = .ack(sequence: s)
        case 4: guard let s = r.u64() else { return nil }; k = .nack(sequence: s)
        case 5, 6:
            guard let state = decodeGossip(&r) else { return nil }
            k = .sync(state: state, isReply: kind == 6)
        default: return nil
        }
        guard let gossip = decodeGossip(&r) else { return nil }
        return SWIMMessage(k, gossip: gossip)
    }

    static func decodeGossip(_ r: inout WireReader) -> [SWIMGossip]? {
        guard let count = r.byte() else { return nil }
        var out: [SWIMGossip] = []
        out.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let node = r.string(), !node.isEmpty, let origin = r.string(), !origin.isEmpty,
                  let statusByte = r.byte(), let status = SWIMMemberStatus(rawValue: statusByte),
                  let incarnation = r.u64(), let hasMetadata = r.byte(), hasMetadata <= 1
            else { return nil }
            var metadata: SWIMMetadata?
            if hasMetadata == 1 {
                guard let version = r.u64(), let length = r.u16(), Int(length) <= maxMetadataBytes,
                      let bytes = r.take(Int(length))
                else { return nil }
                metadata = SWIMMetadata(version: version, bytes: bytes)
            }
            out.append(SWIMGossip(node: SWIMNodeID(node), status: status, incarnation: incarnation, metadata: metadata,
                                  origin: SWIMNodeID(origin)))
        }
        return out
    }
}

/// Appends big-endian fields.
struct WireWriter {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(256) }

    mutating func byte(_ b: UInt8) { bytes.append(b) }

    mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    mutating func u64(_ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    /// A length-prefixed (one byte) UTF-8 string; false when longer than 255 bytes.
    mutating func string(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard u.count <= 255 else { return false }
        bytes.append(UInt8(u.count))
        bytes.append(contentsOf: u)
        return true
    }
}

/// Reads big-endian fields with bounds checks: every read past the end returns nil.
struct WireReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    var atEnd: Bool { index == bytes.endIndex }

    mutating func skip(_ n: Int) { index = min(bytes.endIndex, index + n) }

    mutating func byte() -> UInt8? {
        guard index < bytes.endIndex else { return nil }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func u16() -> UInt16? {
        guard let a = byte(), let b = byte() else { return nil }
        return UInt16(a) << 8 | UInt16(b)
    }

    mutating func u64() -> UInt64? {
        guard bytes.endIndex - index >= 8 else { return nil }
        var v: UInt64 = 0
        for _ in 0..<8 { v = v << 8 | UInt64(bytes[index]); index += 1 }
        return v
    }

    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, bytes.endIndex - index >= n else { return nil }
        defer { index += n }
        return Array(bytes[index..<(index + n)])
    }

    /// A one-byte-length-prefixed string; nil when cut short or not UTF-8.
    mutating func string() -> String? {
        guard let n = byte(), let raw = take(Int(n)) else { return nil }
        return String(validating: raw, as: UTF8.self)
    }
}

/// Issues strictly increasing sequence numbers that also carry the sender's clock: milliseconds since the epoch
/// times 1024, plus a counter for packets within one millisecond.
public struct GossipSequence: Sendable {
    private var last: UInt64 = 0

    /// Starts fresh (a restart continues above the old numbers because the clock moved on).
    public init() {}

    /// The next number at wall-clock `nowMs`.
    public mutating func next(nowMs: UInt64) -> UInt64 {
        let candidate = nowMs &* 1024
        last = max(candidate, last &+ 1)
        return last
    }

    /// The sender's clock in a sequence number (milliseconds since the epoch).
    public static func milliseconds(_ sequence: UInt64) -> UInt64 { sequence / 1024 }
}

/// Anti-replay per sender, in the manner of IPsec's window: a packet is accepted once, when its sequence number is
/// new and not older than the last 64 accepted from that sender, and when its clock is within `maxSkewMs` of ours.
public struct GossipReplayGuard: Sendable {
    /// How many recent sequence numbers are remembered per sender (the out-of-order tolerance).
    public static let window = 64

    private var recent: [SWIMNodeID: [UInt64]] = [:]  // ascending, at most `window`
    /// Largest clock difference accepted (a replay after a restart of the receiver is caught by this).
    public let maxSkewMs: UInt64
    /// Most senders tracked; beyond it the one heard from longest ago is forgotten (names are authenticated first).
    public let maxSenders: Int

    /// A guard accepting clocks up to `maxSkewMs` apart.
    public init(maxSkewMs: UInt64 = 30_000, maxSenders: Int = 4096) {
        self.maxSkewMs = maxSkewMs
        self.maxSenders = maxSenders
    }

    /// Checks and records a packet's sequence number; nil when accepted, else why not.
    public mutating func check(sender: SWIMNodeID, sequence: UInt64, nowMs: UInt64) -> GossipDropReason? {
        let clock = GossipSequence.milliseconds(sequence)
        let distance = clock > nowMs ? clock - nowMs : nowMs - clock
        guard distance <= maxSkewMs else { return .skew }
        guard var list = recent[sender] else {
            if recent.count >= maxSenders, let victim = recent.min(by: { ($0.value.last ?? 0) < ($1.value.last ?? 0) })?.key {
                recent[victim] = nil
            }
            recent[sender] = [sequence]
            return nil
        }
        if let first = list.first, list.count >= Self.window, sequence < first { return .replay }
        let at = list.firstIndex { $0 >= sequence } ?? list.endIndex
        if at < list.endIndex, list[at] == sequence { return .replay }
        list.insert(sequence, at: at)
        if list.count > Self.window { list.removeFirst() }
        recent[sender] = list
        return nil
    }
}

extension Substring {
    /// Without leading and trailing spaces, tabs and carriage returns.
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return s
    }
}
