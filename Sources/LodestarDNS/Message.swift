/// Resource record types this server knows by name (RFC 1035, 3596, 6891).
public enum RRType {
    public static let a: UInt16 = 1
    public static let ns: UInt16 = 2
    public static let cname: UInt16 = 5
    public static let soa: UInt16 = 6
    public static let mx: UInt16 = 15
    public static let txt: UInt16 = 16
    public static let aaaa: UInt16 = 28
    public static let ds: UInt16 = 43
    public static let rrsig: UInt16 = 46
    public static let nsec: UInt16 = 47
    public static let dnskey: UInt16 = 48
    public static let opt: UInt16 = 41
    public static let any: UInt16 = 255
    public static let axfr: UInt16 = 252
    public static let ixfr: UInt16 = 251
}

/// DNS classes (RFC 1035 §3.2.4).
public enum RRClass {
    public static let `in`: UInt16 = 1
    public static let ch: UInt16 = 3
    public static let any: UInt16 = 255
}

/// Response codes, including the EDNS extended BADVERS (RFC 6891 §9).
public enum RCode {
    public static let noError: UInt16 = 0
    public static let formErr: UInt16 = 1
    public static let servFail: UInt16 = 2
    public static let nxDomain: UInt16 = 3
    public static let notImp: UInt16 = 4
    public static let refused: UInt16 = 5
    public static let badVers: UInt16 = 16
}

/// EDNS option codes used here.
public enum EDNSOptionCode {
    /// RFC 5001.
    public static let nsid: UInt16 = 3
    /// RFC 7871.
    public static let clientSubnet: UInt16 = 8
    /// RFC 7873.
    public static let cookie: UInt16 = 10
}

/// The 12-byte message header (RFC 1035 §4.1.1); the 4-bit RCODE only (see `DNSMessage.rcode` for the extended one).
public struct DNSHeader: Equatable, Sendable {
    public var id: UInt16 = 0
    public var isResponse = false
    public var opcode: UInt8 = 0
    public var authoritative = false
    public var truncated = false
    public var recursionDesired = false
    public var recursionAvailable = false
    /// The Z bit (must be zero in queries and responses, RFC 1035; kept to echo what was sent).
    public var zero = false
    public var authenticData = false
    public var checkingDisabled = false
    public var rcode: UInt8 = 0

    public init() {}

    /// The second 16-bit word of the header.
    public var flags: UInt16 {
        var f: UInt16 = 0
        if isResponse { f |= 0x8000 }
        f |= UInt16(opcode & 0x0F) << 11
        if authoritative { f |= 0x0400 }
        if truncated { f |= 0x0200 }
        if recursionDesired { f |= 0x0100 }
        if recursionAvailable { f |= 0x0080 }
        if zero { f |= 0x0040 }
        if authenticData { f |= 0x0020 }
        if checkingDisabled { f |= 0x0010 }
        f |= UInt16(rcode & 0x0F)
        return f
    }

    /// Sets every field from the second header word.
    public init(id: UInt16, flags f: UInt16) {
        self.id = id
        isResponse = f & 0x8000 != 0
        opcode = UInt8((f >> 11) & 0x0F)
        authoritative = f & 0x0400 != 0
        truncated = f & 0x0200 != 0
        recursionDesired = f & 0x0100 != 0
        recursionAvailable = f & 0x0080 != 0
        zero = f & 0x0040 != 0
        authenticData = f & 0x0020 != 0
        checkingDisabled = f & 0x0010 != 0
        rcode = UInt8(f & 0x0F)
    }
}

/// One entry of the question section.
public struct DNSQuestion: Equatable, Sendable {
    public var name: DNSName
    public var type: UInt16
    public var qclass: UInt16

    public init(name: DNSName, type: UInt16, qclass: UInt16) {
        self.name = name
        self.type = type
        self.qclass = qclass
    }
}

/// An EDNS option (RFC 6891 §6.1.2) as code and raw data.
public struct EDNSOption: Equatable, Sendable {
    public var code: UInt16
    public var data: [UInt8]

    public init(code: UInt16, data: [UInt8]) {
        self.code = code
        self.data = data
    }
}

/// Typed RDATA for the types Lodestar serves; anything else is kept raw.
public enum RData: Equatable, Sendable {
    case a(UInt32)
    case aaaa([UInt8])
    case ns(DNSName)
    case cname(DNSName)
    case soa(mname: DNSName, rname: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32)
    case mx(preference: UInt16, exchange: DNSName)
    case txt([[UInt8]])
    case opt([EDNSOption])
    case unknown([UInt8])
}

/// A resource record. For OPT (RFC 6891 §6.1.2) `rclass` is the UDP payload size and `ttl` holds extended RCODE, version and flags.
public struct ResourceRecord: Equatable, Sendable {
    public var name: DNSName
    public var type: UInt16
    public var rclass: UInt16
    public var ttl: UInt32
    public var rdata: RData

    public init(name: DNSName, type: UInt16, rclass: UInt16, ttl: UInt32, rdata: RData) {
        self.name = name
        self.type = type
        self.rclass = rclass
        self.ttl = ttl
        self.rdata = rdata
    }
}

/// A whole DNS message.
public struct DNSMessage: Equatable, Sendable {
    public var header: DNSHeader
    public var questions: [DNSQuestion]
    public var answers: [ResourceRecord]
    public var authority: [ResourceRecord]
    public var additional: [ResourceRecord]

    public init(header: DNSHeader = DNSHeader(), questions: [DNSQuestion] = [], answers: [ResourceRecord] = [],
                authority: [ResourceRecord] = [], additional: [ResourceRecord] = []) {
        self.header = header
        self.questions = questions
        self.answers = answers
        self.authority = authority
        self.additional = additional
    }

    /// The OPT pseudo-record, if any.
    public var opt: ResourceRecord? { additional.first { $0.type == RRType.opt } }

    /// Full 12-bit RCODE: header bits plus the OPT's extended bits (RFC 6891 §6.1.3).
    public var rcode: UInt16 {
        let high = opt.map { UInt16($0.ttl >> 24) << 4 } ?? 0
        return high | UInt16(header.rcode)
    }
}
