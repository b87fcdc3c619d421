import Foundation

/// One resource record line of dig's output: `owner TTL CLASS TYPE RDATA…`.
struct DigRecord: Equatable, CustomStringConvertible {
    var name: String
    var ttl: Int
    var rclass: String
    var type: String
    var data: String

    init?(line: String) {
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard parts.count >= 4, let ttl = Int(parts[1]) else { return nil }
        name = parts[0]
        self.ttl = ttl
        rclass = parts[2]
        type = parts[3]
        data = parts.dropFirst(4).joined(separator: " ")
    }

    var description: String { "\(name) \(ttl) \(rclass) \(type) \(data)" }
}

/// dig's default (`+cmd +comments +question +answer …`) output, parsed. For multi-message output (AXFR, TCP retry)
/// the fields describe the last message seen.
struct DigResult: CustomStringConvertible {
    let output: String
    /// dig's exit status (0 = got an answer, 9 = no reply, 10 = parse error…).
    let exitStatus: Int32
    var opcode: String?
    var status: String?
    var id: Int?
    var flags = Set<String>()
    var counts = [String: Int]()
    var answer = [DigRecord]()
    var authority = [DigRecord]()
    var additional = [DigRecord]()
    var hasOPT = false
    var ednsVersion: Int?
    var udpPayload: Int?
    /// `CLIENT-SUBNET: ADDR/SOURCE/SCOPE` of the response.
    var clientSubnet: (address: String, source: Int, scope: Int)?
    var nsid: String?
    var transport: String?

    init(output: String, status: Int32) {
        self.output = output
        exitStatus = status
        enum Section { case none, question, answer, authority, additional }
        var section = Section.none
        for raw in output.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.isEmpty { section = .none; continue }
            if line.hasPrefix(";; ->>HEADER<<-") {
                // A new message: reset what belongs to one message.
                opcode = Self.field(line, "opcode: ")
                self.status = Self.field(line, "status: ")
                id = Self.field(line, "id: ").flatMap { Int($0) }
                flags = []; counts = [:]; answer = []; authority = []; additional = []
                hasOPT = false; ednsVersion = nil; udpPayload = nil; clientSubnet = nil; nsid = nil
                continue
            }
            if line.hasPrefix(";; flags:") {
                let afterFlags = line.dropFirst(";; flags:".count)
                let parts = afterFlags.split(separator: ";", maxSplits: 1)
                flags = Set((parts.first ?? "").split(separator: " ").map(String.init))
                if parts.count > 1 {
                    for item in parts[1].split(separator: ",") {
                        let kv = item.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
                        if kv.count == 2, let n = Int(kv[1]) { counts[kv[0]] = n }
                    }
                }
                continue
            }
            if line.hasPrefix(";; OPT PSEUDOSECTION:") { hasOPT = true; continue }
            if line.hasPrefix("; EDNS: version: ") {
                ednsVersion = Self.field(line, "version: ").flatMap { Int($0) }
                udpPayload = Self.field(line, "udp: ").flatMap { Int($0) }
                continue
            }
            if line.hasPrefix("; CLIENT-SUBNET: ") {
                let value = line.dropFirst("; CLIENT-SUBNET: ".count).trimmingCharacters(in: .whitespaces)
                let parts = value.split(separator: "/").map(String.init)
                if parts.count == 3, let s = Int(parts[1]), let sc = Int(parts[2]) { clientSubnet = (parts[0], s, sc) }
                continue
            }
            if line.hasPrefix("; NSID: ") {
                if let open = line.range(of: "(\""), let close = line.range(of: "\")", options: .backwards), open.upperBound <= close.lowerBound {
                    nsid = String(line[open.upperBound..<close.lowerBound])
                } else {
                    nsid = String(line.dropFirst("; NSID: ".count))
                }
                continue
            }
            if line.hasPrefix(";; SERVER: ") {
                if let open = line.range(of: "(", options: .backwards), let close = line.range(of: ")", options: .backwards) {
                    transport = String(line[open.upperBound..<close.lowerBound])
                }
                continue
            }
            if line.hasPrefix(";; QUESTION SECTION:") { section = .question; continue }
            if line.hasPrefix(";; ANSWER SECTION:") { section = .answer; continue }
            if line.hasPrefix(";; AUTHORITY SECTION:") { section = .authority; continue }
            if line.hasPrefix(";; ADDITIONAL SECTION:") { section = .additional; continue }
            if line.hasPrefix(";") { continue }
            guard let record = DigRecord(line: line) else { continue }
            switch section {
            case .answer: answer.append(record)
            case .authority: authority.append(record)
            case .additional: additional.append(record)
            default:
                // AXFR output has no section headers: count such records as answers.
                answer.append(record)
            }
        }
    }

    /// The text after `key` up to the next ',', ';' or whitespace.
    private static func field(_ line: String, _ key: String) -> String? {
        guard let r = line.range(of: key) else { return nil }
        let rest = line[r.upperBound...]
        let value = rest.prefix { $0 != "," && $0 != ";" && !$0.isWhitespace }
        return value.isEmpty ? nil : String(value)
    }

    /// Answer records of one type.
    func answers(_ type: String) -> [DigRecord] { answer.filter { $0.type == type } }

    var description: String { output }
}
