/// HTTP-date parsing and formatting (RFC 9110 §5.6.7), as seconds since the Unix epoch.
public enum HTTPDate {
    private static let monthNames: [String] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    private static let shortDays: [String] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    private static let longDays: [String] = [
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    ]
    private static let formatDays: [String] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    private static let formatMonths: [String] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]

    /// Parses an IMF-fixdate, RFC 850 or asctime date to epoch seconds; nil when invalid.
    ///
    /// `now` resolves RFC 850 two-digit years: a year that would be more than 50 years after
    /// `now` is taken as the most recent past year with those digits. Without `now` the
    /// fixed window 1970–2069 is used (no clock is read here). The day name is checked to be
    /// a day name but not checked against the date.
    public static func parse(_ string: String, now: Int64? = nil) -> Int64? {
        let bytes = Array(HeaderFields.trimOWS(string).utf8)
        guard let firstSpace = bytes.firstIndex(where: { $0 == 0x20 || $0 == 0x2C }) else { return nil }
        let dayName = HeaderFields.asciiLowercased(String(decoding: bytes[0..<firstSpace], as: UTF8.self))
        if bytes[firstSpace] == 0x2C {
            if shortDays.contains(dayName) { return parseIMF(bytes, from: firstSpace + 1) }
            if longDays.contains(dayName) { return parseRFC850(bytes, from: firstSpace + 1, now: now) }
            return nil
        }
        if shortDays.contains(dayName) { return parseAsctime(bytes, from: firstSpace + 1) }
        return nil
    }

    /// Formats epoch seconds as an IMF-fixdate, clamped to years 0001–9999.
    public static func format(_ epochSeconds: Int64) -> String {
        let lowest = epochFromCivil(year: 1, month: 1, day: 1)
        let highest = epochFromCivil(year: 9999, month: 12, day: 31) + 86_399
        let t = min(max(epochSeconds, lowest), highest)
        let days = floorDiv(t, 86_400)
        let secs = t - days * 86_400
        let (y, m, d) = civilFromDays(days)
        let weekday = Int(((days % 7) + 7) % 7)
        return "\(formatDays[weekday]), \(pad(d, 2)) \(formatMonths[Int(m) - 1]) \(pad(y, 4)) "
            + "\(pad(secs / 3600, 2)):\(pad((secs % 3600) / 60, 2)):\(pad(secs % 60, 2)) GMT"
    }

    // MARK: formats

    /// `, DD Mon YYYY HH:MM:SS GMT` after the day name.
    private static func parseIMF(_ b: [UInt8], from start: Int) -> Int64? {
        var c = Cursor(bytes: b, index: start)
        guard c.expect(0x20), let day = c.digits(2), c.expect(0x20), let month = c.month(),
              c.expect(0x20), let year = c.digits(4), c.expect(0x20),
              let time = c.timeOfDay(), c.expect(0x20), c.expectGMT(), c.atEnd
        else { return nil }
        return assemble(year: year, month: month, day: day, time: time)
    }

    /// `, DD-Mon-YY HH:MM:SS GMT` after the day name.
    private static func parseRFC850(_ b: [UInt8], from start: Int, now: Int64?) -> Int64? {
        var c = Cursor(bytes: b, index: start)
        guard c.expect(0x20), let day = c.digits(2), c.expect(0x2D), let month = c.month(),
              c.expect(0x2D), let yy = c.digits(2), c.expect(0x20),
              let time = c.timeOfDay(), c.expect(0x20), c.expectGMT(), c.atEnd
        else { return nil }
        return assemble(year: fullYear(twoDigit: yy, now: now), month: month, day: day, time: time)
    }

    /// `Mon DD HH:MM:SS YYYY` (day space-padded) after the day name.
    private static func parseAsctime(_ b: [UInt8], from start: Int) -> Int64? {
        var c = Cursor(bytes: b, index: start)
        guard let month = c.month(), c.expect(0x20) else { return nil }
        let day: Int64
        if c.expect(0x20) {
            guard let d = c.digits(1) else { return nil }
            day = d
        } else {
            guard let d = c.digits(2) else { return nil }
            day = d
        }
        guard c.expect(0x20), let time = c.timeOfDay(), c.expect(0x20), let year = c.digits(4), c.atEnd
        else { return nil }
        return assemble(year: year, month: month, day: day, time: time)
    }

    /// The RFC 9110 §5.6.7 rule: more than 50 years in the future means the previous century.
    static func fullYear(twoDigit yy: Int64, now: Int64?) -> Int64 {
        guard let now else { return yy < 70 ? 2000 + yy : 1900 + yy }
        let currentYear = civilFromDays(floorDiv(now, 86_400)).year
        var year = (currentYear / 100) * 100 + yy
        if year > currentYear + 50 { year -= 100 }
        if year <= currentYear - 50 { year += 100 }
        return year
    }

    private static func assemble(year: Int64, month: Int64, day: Int64, time: (Int64, Int64, Int64)) -> Int64? {
        guard year >= 1, year <= 9999, day >= 1, day <= daysInMonth(year: year, month: month) else { return nil }
        return epochFromCivil(year: year, month: month, day: day) + time.0 * 3600 + time.1 * 60 + time.2
    }

    // MARK: calendar

    private static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2:
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            return leap ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), times 86400.
    static func epochFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return (era * 146_097 + doe - 719_468) * 86_400
    }

    /// The civil date of a day count since 1970-01-01.
    static func civilFromDays(_ z0: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// A bounds-checked reader over the date bytes.
    private struct Cursor {
        let bytes: [UInt8]
        var index: Int

        var atEnd: Bool { index == bytes.count }

        mutating func expect(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func digits(_ count: Int) -> Int64? {
            guard count <= bytes.count - index else { return nil }
            var v: Int64 = 0
            for i in index..<(index + count) {
                let b = bytes[i]
                guard b >= 0x30 && b <= 0x39 else { return nil }
                v = v * 10 + Int64(b - 0x30)
            }
            index += count
            return v
        }

        mutating func month() -> Int64? {
            guard 3 <= bytes.count - index else { return nil }
            let name = HeaderFields.asciiLowercased(String(decoding: bytes[index..<(index + 3)], as: UTF8.self))
            guard let i = HTTPDate.monthNames.firstIndex(of: name) else { return nil }
            index += 3
            return Int64(i + 1)
        }

        mutating func timeOfDay() -> (Int64, Int64, Int64)? {
            guard let h = digits(2), expect(0x3A), let m = digits(2), expect(0x3A), let s = digits(2),
                  h <= 23, m <= 59, s <= 60
            else { return nil }
            return (h, m, s)
        }

        mutating func expectGMT() -> Bool {
            expect(0x47) && expect(0x4D) && expect(0x54)
        }
    }
}
