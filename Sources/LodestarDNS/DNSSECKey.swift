import Crypto
import Foundation

/// A DNSSEC zone key (RFC 4034 §2): ECDSA P-256 with SHA-256 (algorithm 13, RFC 6605) or Ed25519 (algorithm 15,
/// RFC 8080), kept in BIND's key file format so keys move between Lodestar, BIND, Knot and the `dnssec-*` tools:
/// `K<zone>.+<alg>+<tag>.private` holds the private key, `.key` the DNSKEY record.
public struct DNSSECKey: Sendable {
    /// The DNSSEC algorithm numbers this server signs with.
    public enum Algorithm: UInt8, Sendable, CaseIterable {
        case ecdsaP256SHA256 = 13
        case ed25519 = 15

        /// The mnemonic BIND writes after the number (`Algorithm: 13 (ECDSAP256SHA256)`).
        public var mnemonic: String { self == .ecdsaP256SHA256 ? "ECDSAP256SHA256" : "ED25519" }

        /// Parses `13`, `15`, `ecdsap256sha256`, `ed25519` (any case).
        public init?(text: String) {
            switch text.lowercased() {
            case "13", "ecdsap256sha256", "ecdsa", "p256", "p-256": self = .ecdsaP256SHA256
            case "15", "ed25519": self = .ed25519
            default: return nil
            }
        }
    }

    private enum Secret: @unchecked Sendable {
        case p256(P256.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
    }

    public let algorithm: Algorithm
    /// DNSKEY flags: 257 (zone key + secure entry point, a key signing key or combined signing key) or 256.
    public let flags: UInt16
    private let secret: Secret

    /// Why a key file could not be used.
    public struct KeyError: Error, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    /// A new random key (a combined signing key, flags 257, by default).
    public static func generate(_ algorithm: Algorithm = .ecdsaP256SHA256, flags: UInt16 = 257) -> DNSSECKey {
        switch algorithm {
        case .ecdsaP256SHA256: return DNSSECKey(algorithm: algorithm, flags: flags, secret: .p256(P256.Signing.PrivateKey()))
        case .ed25519: return DNSSECKey(algorithm: algorithm, flags: flags, secret: .ed25519(Curve25519.Signing.PrivateKey()))
        }
    }

    private init(algorithm: Algorithm, flags: UInt16, secret: Secret) {
        self.algorithm = algorithm
        self.flags = flags
        self.secret = secret
    }

    /// The key from its private bytes (the P-256 scalar or the Ed25519 seed, 32 bytes each).
    public init(algorithm: Algorithm, flags: UInt16 = 257, privateKey: [UInt8]) throws {
        self.algorithm = algorithm
        self.flags = flags
        do {
            switch algorithm {
            case .ecdsaP256SHA256: secret = .p256(try P256.Signing.PrivateKey(rawRepresentation: privateKey))
            case .ed25519: secret = .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: privateKey))
            }
        } catch {
            throw KeyError("the private key is not a valid \(algorithm.mnemonic) key (\(privateKey.count) bytes)")
        }
    }

    /// The public key as DNSKEY carries it: x‖y for P-256 (RFC 6605 §4), the 32-byte key for Ed25519 (RFC 8080 §3).
    public var publicKey: [UInt8] {
        switch secret {
        case .p256(let k): return Array(k.publicKey.rawRepresentation)
        case .ed25519(let k): return Array(k.publicKey.rawRepresentation)
        }
    }

    private var privateBytes: [UInt8] {
        switch secret {
        case .p256(let k): return Array(k.rawRepresentation)
        case .ed25519(let k): return Array(k.rawRepresentation)
        }
    }

    /// DNSKEY RDATA: flags, protocol 3, algorithm, public key (RFC 4034 §2.1).
    public var dnskeyRData: [UInt8] {
        [UInt8(flags >> 8), UInt8(flags & 0xFF), 3, algorithm.rawValue] + publicKey
    }

    /// The key tag (RFC 4034 Appendix B).
    public var keyTag: UInt16 {
        var acc: UInt32 = 0
        for (i, b) in dnskeyRData.enumerated() { acc += (i & 1) == 0 ? UInt32(b) << 8 : UInt32(b) }
        acc += (acc >> 16) & 0xFFFF
        return UInt16(acc & 0xFFFF)
    }

    /// A signature over `data`: r‖s for P-256 (64 bytes), the Ed25519 signature (64 bytes).
    public func sign(_ data: [UInt8]) -> [UInt8] {
        switch secret {
        case .p256(let k): return (try? Array(k.signature(for: data).rawRepresentation)) ?? []
        case .ed25519(let k): return (try? Array(k.signature(for: data))) ?? []
        }
    }

    /// Whether `signature` is this key's over `data` (for tests and self-checks).
    public func verify(_ signature: [UInt8], over data: [UInt8]) -> Bool {
        switch secret {
        case .p256(let k):
            guard let s = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return k.publicKey.isValidSignature(s, for: data)
        case .ed25519(let k):
            return k.publicKey.isValidSignature(signature, for: data)
        }
    }

    /// The DS RDATA for this key at `owner` with SHA-256 (digest type 2, RFC 4509): tag, algorithm, 2, digest.
    public func dsRData(owner: DNSName) -> [UInt8] {
        let digest = Array(SHA256.hash(data: owner.lowercased.wire + dnskeyRData))
        return [UInt8(keyTag >> 8), UInt8(keyTag & 0xFF), algorithm.rawValue, 2] + digest
    }

    /// `owner. IN DS tag alg 2 HEX` — what the parent zone publishes.
    public func dsRecord(owner: DNSName, ttl: UInt32? = nil) -> String {
        "\(owner)\(ttl.map { " \($0)" } ?? "") IN DS \(keyTag) \(algorithm.rawValue) 2 \(dsDigestHex(owner: owner))"
    }

    /// The DS's SHA-256 digest in upper-case hex (as a trust anchor's `static-ds` takes it).
    public func dsDigestHex(owner: DNSName) -> String {
        dsRData(owner: owner).dropFirst(4).map { String(format: "%02X", $0) }.joined()
    }

    /// `owner. IN DNSKEY flags 3 alg BASE64` (the `.key` file's record, and a trust anchor for delv or unbound).
    public func dnskeyRecord(owner: DNSName) -> String {
        "\(owner) IN DNSKEY \(flags) 3 \(algorithm.rawValue) \(Data(publicKey).base64EncodedString())"
    }

    /// BIND's file name stem, `K<zone>.+<alg>+<tag>`.
    public func fileStem(owner: DNSName) -> String {
        let tag = String(keyTag)
        let alg = String(algorithm.rawValue)
        return "K\(owner.lowercased)+\(String(repeating: "0", count: 3 - alg.count) + alg)+\(String(repeating: "0", count: 5 - tag.count) + tag)"
    }

    /// The `.private` file's text (BIND `Private-key-format: v1.3`).
    public func privateFileText(owner: DNSName, created: Date = Date()) -> String {
        """
        Private-key-format: v1.3
        Algorithm: \(algorithm.rawValue) (\(algorithm.mnemonic))
        PrivateKey: \(Data(privateBytes).base64EncodedString())
        ; Flags: \(flags) (Lodestar reads this line; BIND takes the flags from the .key file)
        ; Zone: \(owner)

        """
    }

    /// The `.key` file's text.
    public func publicFileText(owner: DNSName) -> String {
        "; This is a \(flags & 1 == 1 ? "key-signing" : "zone-signing") key, keyid \(keyTag), for \(owner)\n"
            + dnskeyRecord(owner: owner) + "\n"
    }

    /// Reads a BIND `.private` file. The flags come from the `.key` file beside it when there is one, else from a
    /// `; Flags:` comment, else 257. Throws with the reason when the file is unreadable or not a key this server signs with.
    public static func load(privateFile path: String) throws -> DNSSECKey {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw KeyError("cannot read \(path)")
        }
        var fields = [String: String]()
        var flags: UInt16?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("; Flags:") {
                flags = line.dropFirst(8).split(separator: " ").first.flatMap { UInt16($0) }
                continue
            }
            guard !line.hasPrefix(";"), let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        guard let algText = fields["Algorithm"]?.split(separator: " ").first,
              let algorithm = Algorithm(text: String(algText)) else {
            throw KeyError("\(path): \"Algorithm:\" must be 13 (ECDSAP256SHA256) or 15 (ED25519)")
        }
        guard let b64 = fields["PrivateKey"], let bytes = Data(base64Encoded: b64) else {
            throw KeyError("\(path): no base64 \"PrivateKey:\" line")
        }
        if path.hasSuffix(".private"), let keyText = try? String(contentsOfFile: String(path.dropLast(8)) + ".key", encoding: .utf8),
           let found = Self.flags(inKeyFile: keyText) {
            flags = found
        }
        let f = flags ?? 257
        guard f == 256 || f == 257 else { throw KeyError("\(path): DNSKEY flags \(f) (256 or 257 expected)") }
        do {
            return try DNSSECKey(algorithm: algorithm, flags: f, privateKey: Array(bytes))
        } catch let e as KeyError {
            throw KeyError("\(path): \(e.description)")
        }
    }

    /// The flags field of the DNSKEY record in a `.key` file's text.
    static func flags(inKeyFile text: String) -> UInt16? {
        for raw in text.split(whereSeparator: \.isNewline) where !raw.hasPrefix(";") {
            let parts = raw.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if let i = parts.firstIndex(where: { $0.uppercased() == "DNSKEY" }), i + 1 < parts.count { return UInt16(parts[i + 1]) }
        }
        return nil
    }
}
