import LodestarTopology

/// A problem in a geo CSV file, located as `file:line: reason`.
public struct GeoCSVError: Error, CustomStringConvertible, Equatable {
    public var file: String
    /// 1-based line number.
    public var line: Int
    public var reason: String

    public var description: String { "\(file):\(line): \(reason)" }
}

/// Reads the geo source CSV: `CIDR,latitude,longitude,country,continent[,city]` per row.
///
/// Blank lines and lines starting with `#` are skipped, as is a first row whose first field is `cidr` (a header).
/// Fields are trimmed; a field may be double-quoted (with `""` for a quote) to hold commas. Country codes must be two
/// ASCII letters and continents one of AF AN AS EU NA OC SA (both are upper-cased). Networks must be written with
/// their host bits clear, and each network may appear once.
public enum GeoCSV {
    /// The seven continent codes used by GeoLite2 (`continent.code`).
    public static let continents: Set<String> = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"]

    /// Parses `text` (the contents of `file`, which is used only in error messages).
    public static func parse(_ text: String, file: String) throws -> [GeoRecord] {
        var records = [GeoRecord]()
        var firstLineOf = [IPPrefix: Int]()
        var sawDataRow = false
        var lineNumber = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }) {
            lineNumber += 1
            let line = trim(rawLine)
            if line.isEmpty || line.hasPrefix("#") { continue }
            func fail(_ reason: String) -> GeoCSVError { GeoCSVError(file: file, line: lineNumber, reason: reason) }

            guard let fields = splitFields(line) else { throw fail("unterminated quoted field") }
            if !sawDataRow, let first = fields.first, first.lowercased() == "cidr" {
                sawDataRow = true
                continue
            }
            sawDataRow = true
            guard fields.count == 5 || fields.count == 6 else {
                throw fail("expected 5 or 6 columns (cidr,latitude,longitude,country,continent[,city]), found \(fields.count)")
            }

            let cidr = fields[0]
            guard cidr.contains("/"), let prefix = IPPrefix(cidr) else {
                throw fail("bad CIDR '\(cidr)' (expected ADDRESS/LENGTH)")
            }
            guard let written = IPPrefix(cidr.split(separator: "/").first.map(String.init) ?? ""),
                  written.address == prefix.address else {
                throw fail("CIDR '\(cidr)' has host bits set (the network is \(prefix))")
            }
            guard let latitude = Double(fields[1]), (-90.0...90.0).contains(latitude) else {
                throw fail("latitude '\(fields[1])' is not a number in -90...90")
            }
            guard let longitude = Double(fields[2]), (-180.0...180.0).contains(longitude) else {
                throw fail("longitude '\(fields[2])' is not a number in -180...180")
            }
            let country = fields[3].uppercased()
            guard country.utf8.count == 2, country.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else {
                throw fail("country '\(fields[3])' is not a two-letter ISO 3166-1 code")
            }
            let continent = fields[4].uppercased()
            guard continents.contains(continent) else {
                throw fail("continent '\(fields[4])' is not one of AF AN AS EU NA OC SA")
            }
            let city = fields.count == 6 && !fields[5].isEmpty ? fields[5] : nil
            if let earlier = firstLineOf[prefix] {
                throw fail("network \(prefix) already listed on line \(earlier)")
            }
            firstLineOf[prefix] = lineNumber
            records.append(GeoRecord(prefix: prefix, latitude: latitude, longitude: longitude, country: country,
                                     continent: continent, city: city))
        }
        return records
    }

    /// Splits one line on commas, honouring double quotes; nil when a quote is left open.
    private static func splitFields(_ line: String) -> [String]? {
        var fields = [String]()
        var current = ""
        var inQuotes = false
        var wasQuoted = false
        var iterator = line.makeIterator()
        var pending: Character? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if inQuotes {
                if c == "\"" {
                    if let n = iterator.next() {
                        if n == "\"" { current.append("\"") } else { inQuotes = false; pending = n }
                    } else {
                        inQuotes = false
                    }
                } else {
                    current.append(c)
                }
            } else if c == "," {
                fields.append(wasQuoted ? current : trim(Substring(current)))
                current = ""
                wasQuoted = false
            } else if c == "\"" && trim(Substring(current)).isEmpty {
                inQuotes = true
                wasQuoted = true
                current = ""
            } else {
                current.append(c)
            }
        }
        if inQuotes { return nil }
        fields.append(wasQuoted ? current : trim(Substring(current)))
        return fields
    }

    private static func trim(_ s: Substring) -> String {
        var view = s[...]
        while let first = view.first, first.isWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isWhitespace { view = view.dropLast() }
        return String(view)
    }
}
