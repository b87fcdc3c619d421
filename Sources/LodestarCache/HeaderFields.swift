/// An ordered list of HTTP fields as received; names compare case-insensitively.
public typealias HTTPFields = [(name: String, value: String)]

/// Helpers for reading fields out of an `HTTPFields` list (RFC 9110 §5.2, §5.3).
enum HeaderFields {
    /// Every field line value with the given name, in order.
    static func values(_ name: String, in fields: HTTPFields) -> [String] {
        let wanted = asciiLowercased(name)
        var out: [String] = []
        for field in fields where nameMatches(field.name, lowercased: wanted) {
            out.append(field.value)
        }
        return out
    }

    /// Whether a field name equals `lowercased` ignoring ASCII case, without allocating.
    static func nameMatches(_ name: String, lowercased: String) -> Bool {
        var a = name.utf8.makeIterator()
        var b = lowercased.utf8.makeIterator()
        while true {
            switch (a.next(), b.next()) {
            case (nil, nil): return true
            case (let x?, let y?):
                if (x >= 0x41 && x <= 0x5A ? x + 0x20 : x) != y { return false }
            default: return false
            }
        }
    }

    /// The field lines of one name combined into a comma list (RFC 9110 §5.3), nil when absent.
    static func combined(_ name: String, in fields: HTTPFields) -> String? {
        let all = values(name, in: fields)
        if all.isEmpty { return nil }
        return all.joined(separator: ", ")
    }

    /// The first field line value of a singleton field, trimmed; nil when absent.
    static func first(_ name: String, in fields: HTTPFields) -> String? {
        let wanted = asciiLowercased(name)
        for field in fields where nameMatches(field.name, lowercased: wanted) { return trimOWS(field.value) }
        return nil
    }

    /// Whether a field of that name is present at all.
    static func contains(_ name: String, in fields: HTTPFields) -> Bool {
        let wanted = asciiLowercased(name)
        return fields.contains { nameMatches($0.name, lowercased: wanted) }
    }

    /// ASCII-only lower-casing (field names and tokens are ASCII; other bytes are kept).
    static func asciiLowercased(_ s: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            bytes.append(b >= 0x41 && b <= 0x5A ? b + 0x20 : b)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether the byte is optional whitespace (SP or HTAB).
    static func isOWS(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    /// Trims leading and trailing SP/HTAB.
    static func trimOWS(_ s: String) -> String {
        let bytes = Array(s.utf8)
        var lo = 0
        var hi = bytes.count
        while lo < hi, isOWS(bytes[lo]) { lo += 1 }
        while hi > lo, isOWS(bytes[hi - 1]) { hi -= 1 }
        return String(decoding: bytes[lo..<hi], as: UTF8.self)
    }

    /// Splits a comma list into trimmed, non-empty members, keeping quoted strings (with their commas) intact.
    static func splitList(_ s: String) -> [String] {
        var out: [String] = []
        var current: [UInt8] = []
        var inQuotes = false
        var escaped = false
        for b in s.utf8 {
            if inQuotes {
                current.append(b)
                if escaped {
                    escaped = false
                } else if b == 0x5C {
                    escaped = true
                } else if b == 0x22 {
                    inQuotes = false
                }
                continue
            }
            if b == 0x2C {
                let member = trimOWS(String(decoding: current, as: UTF8.self))
                if !member.isEmpty { out.append(member) }
                current.removeAll(keepingCapacity: true)
            } else {
                if b == 0x22 { inQuotes = true }
                current.append(b)
            }
        }
        let member = trimOWS(String(decoding: current, as: UTF8.self))
        if !member.isEmpty { out.append(member) }
        return out
    }

    /// Parses delta-seconds (RFC 9111 §1.2.2): digits only, capped at 2^31; anything else is nil.
    static func deltaSeconds(_ s: String) -> Int64? {
        let bytes = Array(trimOWS(s).utf8)
        if bytes.isEmpty { return nil }
        var value: Int64 = 0
        for b in bytes {
            guard b >= 0x30 && b <= 0x39 else { return nil }
            if value < deltaSecondsCap {
                value = value * 10 + Int64(b - 0x30)
            }
        }
        return min(value, deltaSecondsCap)
    }

    /// The value a too-large delta-seconds is taken as (RFC 9111 §1.2.2).
    static let deltaSecondsCap: Int64 = 2_147_483_648

    /// Adds without overflowing, saturating at the Int64 bounds.
    static func add(_ a: Int64, _ b: Int64) -> Int64 {
        let (r, o) = a.addingReportingOverflow(b)
        if o { return b > 0 ? Int64.max : Int64.min }
        return r
    }

    /// Subtracts without overflowing, saturating at the Int64 bounds.
    static func sub(_ a: Int64, _ b: Int64) -> Int64 {
        let (r, o) = a.subtractingReportingOverflow(b)
        if o { return b < 0 ? Int64.max : Int64.min }
        return r
    }
}
