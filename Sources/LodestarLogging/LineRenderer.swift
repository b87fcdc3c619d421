import Logging

/// Pure rendering of one log event to one line (no trailing newline). Never traps: every input has an output.
enum LineRenderer {
    /// Keys the line itself uses; metadata keys equal to one of them get a `meta_` prefix.
    static let reservedKeys: Set<String> = ["ts", "level", "logger", "msg"]
    /// Nested metadata deeper than this is cut off (rendered as `…`) so that rendering never exhausts the stack.
    static let maxDepth = 64

    static func render(
        format: LogFormat, secondsSince1970: Double, level: Logger.Level, label: String, message: String,
        source: String, metadata: Logger.Metadata
    ) -> String {
        let ms = millisecondsSince1970(secondsSince1970)
        switch format {
        case .logfmt: return logfmt(ms: ms, level: level, label: label, message: message, metadata: metadata)
        case .json: return json(ms: ms, level: level, label: label, message: message, metadata: metadata)
        case .text:
            return text(ms: ms, level: level, label: label, message: message, source: source, metadata: metadata)
        }
    }

    // MARK: formats

    static func logfmt(ms: Int64, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata)
        -> String
    {
        var out = ""
        out.reserveCapacity(64 + label.utf8.count + message.utf8.count + 24 * metadata.count)
        out += "ts="
        appendTimestamp(ms, rfc3339: true, to: &out)
        out += " level="
        out += level.rawValue
        out += " logger="
        appendLogfmtValue(label, to: &out)
        out += " msg="
        appendLogfmtValue(message, to: &out)
        for (key, value) in resolvedKeys(metadata, sanitize: sanitizeLogfmtKey) {
            out += " "
            out += key
            out += "="
            appendLogfmtValue(describe(value, depth: 0), to: &out)
        }
        return out
    }

    static func json(ms: Int64, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata)
        -> String
    {
        var out = ""
        out.reserveCapacity(80 + label.utf8.count + message.utf8.count + 24 * metadata.count)
        out += "{\"ts\":\""
        appendTimestamp(ms, rfc3339: true, to: &out)
        out += "\",\"level\":\""
        out += level.rawValue
        out += "\",\"logger\":"
        appendJSONString(label, to: &out)
        out += ",\"msg\":"
        appendJSONString(message, to: &out)
        for (key, value) in resolvedKeys(metadata, sanitize: { $0 }) {
            out += ","
            appendJSONString(key, to: &out)
            out += ":"
            appendJSONValue(value, depth: 0, to: &out)
        }
        out += "}"
        return out
    }

    /// `StreamLogHandler`'s layout: `<ts> <level> <label>: <k=v …> [<source>] <message>`, in UTC.
    static func text(
        ms: Int64, level: Logger.Level, label: String, message: String, source: String, metadata: Logger.Metadata
    ) -> String {
        var out = ""
        out.reserveCapacity(64 + label.utf8.count + message.utf8.count + 24 * metadata.count)
        appendTimestamp(ms, rfc3339: false, to: &out)
        out += " "
        out += level.rawValue
        if !label.isEmpty {
            out += " "
            appendControlEscaped(label, to: &out)
        }
        out += ":"
        for (key, value) in resolvedKeys(metadata, sanitize: sanitizeLogfmtKey) {
            out += " "
            out += key
            out += "="
            appendLogfmtValue(describe(value, depth: 0), to: &out)
        }
        out += " ["
        appendControlEscaped(source, to: &out)
        out += "] "
        appendControlEscaped(message, to: &out)
        return out
    }

    // MARK: keys

    /// The metadata with final key names, sorted by them. Keys that `sanitize` changes or that are reserved are
    /// renamed (sanitized, then prefixed with `meta_` until unique); the others keep their name.
    static func resolvedKeys(_ metadata: Logger.Metadata, sanitize: (String) -> String)
        -> [(key: String, value: Logger.MetadataValue)]
    {
        var result: [(key: String, value: Logger.MetadataValue)] = []
        result.reserveCapacity(metadata.count)
        var used = reservedKeys
        var renamed: [(clean: String, original: String, value: Logger.MetadataValue)] = []
        for (key, value) in metadata {
            let clean = sanitize(key)
            if clean == key && !reservedKeys.contains(key) {
                used.insert(key)
                result.append((key, value))
            } else {
                renamed.append((clean, key, value))
            }
        }
        if !renamed.isEmpty {
            renamed.sort { $0.original < $1.original }
            for entry in renamed {
                var candidate = entry.clean
                while used.contains(candidate) { candidate = "meta_" + candidate }
                used.insert(candidate)
                result.append((candidate, entry.value))
            }
        }
        result.sort { $0.key < $1.key }
        return result
    }

    /// A logfmt key: spaces, `=`, `"`, other whitespace and control characters become `_`; empty becomes `_`.
    static func sanitizeLogfmtKey(_ key: String) -> String {
        if key.isEmpty { return "_" }
        guard key.unicodeScalars.contains(where: isUnsafeInKey) else { return key }
        var scalars = String.UnicodeScalarView()
        for scalar in key.unicodeScalars {
            scalars.append(isUnsafeInKey(scalar) ? "_" : scalar)
        }
        return String(scalars)
    }

    private static func isUnsafeInKey(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "=" || scalar == "\"" || isControl(scalar) || scalar.properties.isWhitespace
    }

    // MARK: values

    /// A C0 or C1 control character, or DEL.
    @inline(__always)
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (scalar.value >= 0x7F && scalar.value <= 0x9F)
    }

    /// Whether a logfmt value must be quoted: empty, or any whitespace, `=`, `"` or control character.
    static func logfmtNeedsQuotes(_ value: String) -> Bool {
        if value.isEmpty { return true }
        for scalar in value.unicodeScalars {
            if scalar == " " || scalar == "=" || scalar == "\"" || isControl(scalar) { return true }
            if scalar.value >= 0x80 && scalar.properties.isWhitespace { return true }
        }
        return false
    }

    static func appendLogfmtValue(_ value: String, to out: inout String) {
        guard logfmtNeedsQuotes(value) else {
            out += value
            return
        }
        out += "\""
        appendEscaped(value, escapeQuoteAndBackslash: true, to: &out)
        out += "\""
    }

    /// Text format: only control characters are escaped, so a line stays one line.
    static func appendControlEscaped(_ value: String, to out: inout String) {
        guard value.unicodeScalars.contains(where: isControl) else {
            out += value
            return
        }
        appendEscaped(value, escapeQuoteAndBackslash: false, to: &out)
    }

    static func appendJSONString(_ value: String, to out: inout String) {
        out += "\""
        appendEscaped(value, escapeQuoteAndBackslash: true, to: &out)
        out += "\""
    }

    /// `\` and `"` (optionally), `\n` `\r` `\t`, other control characters as `\u00XX`; everything else verbatim.
    private static func appendEscaped(_ value: String, escapeQuoteAndBackslash: Bool, to out: inout String) {
        var scalars = String.UnicodeScalarView()
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"" where escapeQuoteAndBackslash:
                scalars.append("\\")
                scalars.append("\"")
            case "\\" where escapeQuoteAndBackslash:
                scalars.append("\\")
                scalars.append("\\")
            case "\n":
                scalars.append("\\")
                scalars.append("n")
            case "\r":
                scalars.append("\\")
                scalars.append("r")
            case "\t":
                scalars.append("\\")
                scalars.append("t")
            default:
                if isControl(scalar) {
                    let hex: [Unicode.Scalar] = [
                        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f",
                    ]
                    scalars.append(contentsOf: ["\\", "u", "0", "0"] as [Unicode.Scalar])
                    scalars.append(hex[Int(scalar.value >> 4)])
                    scalars.append(hex[Int(scalar.value & 0xF)])
                } else {
                    scalars.append(scalar)
                }
            }
        }
        out += String(scalars)
    }

    /// swift-log's `MetadataValue.description` layout, with dictionary keys sorted and depth-limited.
    static func describe(_ value: Logger.MetadataValue, depth: Int) -> String {
        switch value {
        case .string(let string):
            return string
        case .stringConvertible(let convertible):
            return convertible.description
        case .array(let list):
            guard depth < maxDepth else { return "[…]" }
            return "[" + list.map { describeElement($0, depth: depth + 1) }.joined(separator: ", ") + "]"
        case .dictionary(let dictionary):
            guard !dictionary.isEmpty else { return "[:]" }
            guard depth < maxDepth else { return "[…]" }
            let entries = dictionary.sorted { $0.key < $1.key }.map {
                "\($0.key.debugDescription): \(describeElement($0.value, depth: depth + 1))"
            }
            return "[" + entries.joined(separator: ", ") + "]"
        }
    }

    private static func describeElement(_ value: Logger.MetadataValue, depth: Int) -> String {
        switch value {
        case .string(let string): return string.debugDescription
        case .stringConvertible(let convertible): return convertible.description.debugDescription
        case .array, .dictionary: return describe(value, depth: depth)
        }
    }

    static func appendJSONValue(_ value: Logger.MetadataValue, depth: Int, to out: inout String) {
        switch value {
        case .string(let string):
            appendJSONString(string, to: &out)
        case .stringConvertible(let convertible):
            appendJSONString(convertible.description, to: &out)
        case .array(let list):
            guard depth < maxDepth else { return appendJSONString("…", to: &out) }
            out += "["
            for (index, element) in list.enumerated() {
                if index > 0 { out += "," }
                appendJSONValue(element, depth: depth + 1, to: &out)
            }
            out += "]"
        case .dictionary(let dictionary):
            guard depth < maxDepth else { return appendJSONString("…", to: &out) }
            out += "{"
            for (index, entry) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { out += "," }
                appendJSONString(entry.key, to: &out)
                out += ":"
                appendJSONValue(entry.value, depth: depth + 1, to: &out)
            }
            out += "}"
        }
    }

    // MARK: time

    /// Representable range: 0000-01-01T00:00:00.000Z ... 9999-12-31T23:59:59.999Z.
    static let minMilliseconds: Int64 = -62_167_219_200_000
    static let maxMilliseconds: Int64 = 253_402_300_799_999

    /// Milliseconds since the epoch, rounded down (after rounding to the microsecond to absorb binary
    /// floating-point error); NaN gives the epoch, out-of-range values are clamped.
    static func millisecondsSince1970(_ seconds: Double) -> Int64 {
        guard !seconds.isNaN else { return 0 }
        let micros = (seconds * 1_000_000).rounded()
        let lower = Double(minMilliseconds) * 1000
        let upper = Double(maxMilliseconds) * 1000 + 999
        let clamped = Int64(min(max(micros, lower), upper))
        return floorDiv(clamped, 1000)
    }

    @inline(__always)
    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// `2026-11-25T19:44:00.123Z` (RFC 3339) or `2026-11-25T19:44:00+0000` (text format).
    static func appendTimestamp(_ milliseconds: Int64, rfc3339: Bool, to out: inout String) {
        let ms = min(max(milliseconds, minMilliseconds), maxMilliseconds)
        let days = floorDiv(ms, 86_400_000)
        let msOfDay = ms - days * 86_400_000
        let (year, month, day) = civilFromDays(days)
        appendPadded(year, width: 4, to: &out)
        out += "-"
        appendPadded(month, width: 2, to: &out)
        out += "-"
        appendPadded(day, width: 2, to: &out)
        out += "T"
        appendPadded(msOfDay / 3_600_000, width: 2, to: &out)
        out += ":"
        appendPadded(msOfDay / 60_000 % 60, width: 2, to: &out)
        out += ":"
        appendPadded(msOfDay / 1000 % 60, width: 2, to: &out)
        if rfc3339 {
            out += "."
            appendPadded(msOfDay % 1000, width: 3, to: &out)
            out += "Z"
        } else {
            out += "+0000"
        }
    }

    /// Howard Hinnant's `civil_from_days`: proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
    static func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func appendPadded(_ value: Int64, width: Int, to out: inout String) {
        let digits = String(value)
        if digits.utf8.count < width {
            out += String(repeating: "0", count: width - digits.utf8.count)
        }
        out += digits
    }
}
