import Dispatch
import Foundation
import Logging
import XCTest

@testable import LodestarLogging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One line per event, logfmt / JSON / text: escaping, key order, metadata precedence, filtering, concurrency.
final class StructuredLogHandlerTests: XCTestCase {
    /// 2026-11-25T19:44:00.123Z
    static let fixedDate = Date(timeIntervalSince1970: 1_795_635_840.123)

    func makeLogger(
        _ format: LogFormat, label: String = "lodestar.dns", level: Logger.Level = .trace,
        provider: Logger.MetadataProvider? = nil, date: Date = fixedDate
    ) -> (Logger, LogOutput) {
        let output = LogOutput.capture()
        var logger = Logger(label: label) { label in
            var handler = StructuredLogHandler(label: label, format: format, output: output, clock: { date })
            handler.metadataProvider = provider
            return handler
        }
        logger.logLevel = level
        return (logger, output)
    }

    /// The only line written to `output`.
    func onlyLine(_ output: LogOutput, file: StaticString = #filePath, line: UInt = #line) -> String {
        let lines = output.captured
        XCTAssertEqual(lines.count, 1, "lines: \(lines)", file: file, line: line)
        return lines.first ?? ""
    }

    func jsonObject(_ line: String, file: StaticString = #filePath, lineNumber: UInt = #line) -> [String: Any] {
        XCTAssertFalse(line.contains("\n"), file: file, line: lineNumber)
        do {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [])
            guard let dictionary = object as? [String: Any] else {
                XCTFail("not an object: \(line)", file: file, line: lineNumber)
                return [:]
            }
            return dictionary
        } catch {
            XCTFail("invalid JSON \(error): \(line)", file: file, line: lineNumber)
            return [:]
        }
    }

    /// Exact comparison (Unicode scalars, not canonical equivalence).
    func assertExact(_ actual: Any?, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let string = actual as? String else {
            XCTFail("not a string: \(String(describing: actual)), expected \(expected.debugDescription)",
                    file: file, line: line)
            return
        }
        XCTAssertEqual(Array(string.unicodeScalars), Array(expected.unicodeScalars),
                       "\(string.debugDescription) != \(expected.debugDescription)", file: file, line: line)
    }

    /// Nasty values every format must carry through.
    static let nastyValues: [String] = [
        "plain", "", " ", "two words", "a=b", "=", "say \"hi\"", "\"", "back\\slash", "\\", "trailing\\",
        "line1\nline2", "cr\rlf\n", "tab\there", "nul\u{0}byte", "bell\u{7}", "esc\u{1B}[31m", "del\u{7F}",
        "c1\u{85}\u{9F}", "unicode é ü 中文 🎉", "combining e\u{301}", "nbsp\u{A0}x", "ls\u{2028}ps\u{2029}",
        "bom\u{FEFF}", "emoji👨‍👩‍👧‍👦family", "\u{10FFFF}", "key=\"v\" k2=v2", "\\\"", "\\n",
    ]

    // MARK: logfmt

    func test_logfmtExactLine() {
        let (logger, output) = makeLogger(.logfmt)
        logger.info("serving", metadata: ["zone": "example.test.", "node": "dns-1"])
        XCTAssertEqual(
            onlyLine(output),
            #"ts=2026-11-25T19:44:00.123Z level=info logger=lodestar.dns msg=serving node=dns-1 zone=example.test."#
        )
    }

    func test_logfmtQuotingRules() {
        let cases: [(String, String)] = [
            ("plain", "plain"),
            ("", #""""#),
            ("two words", #""two words""#),
            ("a=b", #""a=b""#),
            ("say \"hi\"", #""say \"hi\"""#),
            ("line1\nline2", #""line1\nline2""#),
            ("cr\r\ttab", #""cr\r\ttab""#),
            ("nul\u{0}", #""nul\u0000""#),
            ("esc\u{1B}", #""esc\u001b""#),
            ("del\u{7F}", #""del\u007f""#),
            ("c1\u{85}", #""c1\u0085""#),
            ("back\\slash", #"back\slash"#),
            ("back\\ slash", #""back\\ slash""#),
            ("unicode é 中文 🎉", #""unicode é 中文 🎉""#),
            ("中文🎉", "中文🎉"),
            ("nbsp\u{A0}x", "\"nbsp\u{A0}x\""),
        ]
        for (value, expected) in cases {
            let (logger, output) = makeLogger(.logfmt)
            logger.info("m", metadata: ["k": .string(value)])
            let line = onlyLine(output)
            XCTAssertTrue(line.hasSuffix(" k=" + expected), "\(value.debugDescription) -> \(line)")
        }
    }

    func test_logfmtRoundTripsEveryValue() throws {
        for value in Self.nastyValues {
            let (logger, output) = makeLogger(.logfmt, label: value)
            logger.warning("\(value)", metadata: ["value": .string(value), "nested": ["a": .string(value)]])
            let line = onlyLine(output)
            XCTAssertFalse(line.contains("\n") || line.contains("\r"), line)
            let pairs = try XCTUnwrap(LogfmtParser.parse(line), "unparseable: \(line)")
            XCTAssertEqual(pairs.map(\.key), ["ts", "level", "logger", "msg", "nested", "value"], line)
            let fields = Dictionary(pairs.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            assertExact(fields["logger"], value)
            assertExact(fields["msg"], value)
            assertExact(fields["value"], value)
            assertExact(fields["nested"], "[\"a\": \(value.debugDescription)]")
            XCTAssertEqual(fields["level"], "warning")
        }
    }

    func test_logfmtKeyOrderAndSanitizedKeys() throws {
        let (logger, output) = makeLogger(.logfmt)
        logger.info("m", metadata: [
            "zeta": "1", "alpha": "2", "Mid": "3", "msg": "clash", "level": "clash2", "a b": "space", "": "empty",
            "k=v": "eq",
        ])
        let pairs = try XCTUnwrap(LogfmtParser.parse(onlyLine(output)))
        XCTAssertEqual(
            pairs.map(\.key),
            ["ts", "level", "logger", "msg", "Mid", "_", "a_b", "alpha", "k_v", "meta_level", "meta_msg", "zeta"]
        )
        let fields = Dictionary(pairs.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(fields["msg"], "m")
        XCTAssertEqual(fields["meta_msg"], "clash")
        XCTAssertEqual(fields["meta_level"], "clash2")
        XCTAssertEqual(fields["_"], "empty")
    }

    // MARK: JSON

    func test_jsonExactLine() {
        let (logger, output) = makeLogger(.json)
        logger.info("serving", metadata: ["zone": "example.test.", "node": "dns-1"])
        XCTAssertEqual(
            onlyLine(output),
            #"{"ts":"2026-11-25T19:44:00.123Z","level":"info","logger":"lodestar.dns","msg":"serving","node":"dns-1","zone":"example.test."}"#
        )
    }

    func test_jsonEscapes() {
        let cases: [(String, String)] = [
            ("q\"uote", #""q\"uote""#),
            ("back\\slash", #""back\\slash""#),
            ("nl\ncr\rtab\t", #""nl\ncr\rtab\t""#),
            ("nul\u{0}\u{1}\u{1F}", #""nul\u0000\u0001\u001f""#),
            ("del\u{7F}\u{9F}", #""del\u007f\u009f""#),
            ("", #""""#),
            ("a=b c", #""a=b c""#),
            ("中文🎉", "\"中文🎉\""),
            ("/", #""/""#),
        ]
        for (value, expected) in cases {
            let (logger, output) = makeLogger(.json)
            logger.info("m", metadata: ["k": .string(value)])
            let line = onlyLine(output)
            XCTAssertTrue(line.hasSuffix(",\"k\":" + expected + "}"), "\(value.debugDescription) -> \(line)")
        }
    }

    func test_jsonRoundTripsEveryValue() {
        for value in Self.nastyValues {
            let (logger, output) = makeLogger(.json, label: value)
            logger.error("\(value)", metadata: [
                "value": .string(value),
                "convertible": .stringConvertible(value),
                "array": [.string(value), "x", ["y": .string(value)]],
                "dict": ["inner": .string(value), "list": []],
                value: "as key",
            ])
            let object = jsonObject(onlyLine(output))
            assertExact(object["logger"], value)
            assertExact(object["msg"], value)
            assertExact(object["level"], "error")
            assertExact(object["value"], value)
            assertExact(object["convertible"], value)
            let array = object["array"] as? [Any]
            XCTAssertEqual(array?.count, 3)
            assertExact(array?[0], value)
            assertExact(array?[1], "x")
            assertExact((array?[2] as? [String: Any])?["y"], value)
            let dict = object["dict"] as? [String: Any]
            assertExact(dict?["inner"], value)
            XCTAssertEqual((dict?["list"] as? [Any])?.count, 0)
            // The value used as a key: kept verbatim (JSON keys need no sanitizing) unless it collides.
            if !["value", "convertible", "array", "dict"].contains(value) {
                let keyMatches = object.filter { Array($0.key.unicodeScalars) == Array(value.unicodeScalars) }
                XCTAssertEqual(keyMatches.count, 1, "key \(value.debugDescription) in \(object.keys)")
                assertExact(keyMatches.first?.value, "as key")
            }
        }
    }

    func test_jsonKeyOrderAndReservedKeyPrefix() {
        let (logger, output) = makeLogger(.json)
        logger.info("real", metadata: [
            "zeta": "1", "alpha": "2", "ts": "fake-ts", "level": "fake", "logger": "fake-logger", "msg": "fake-msg",
            "meta_msg": "kept",
        ])
        let line = onlyLine(output)
        let keys = JSONKeyScanner.topLevelKeys(line)
        XCTAssertEqual(
            keys,
            ["ts", "level", "logger", "msg", "alpha", "meta_level", "meta_logger", "meta_meta_msg", "meta_msg",
             "meta_ts", "zeta"]
        )
        let object = jsonObject(line)
        assertExact(object["ts"], "2026-11-25T19:44:00.123Z")
        assertExact(object["msg"], "real")
        assertExact(object["meta_msg"], "kept")
        assertExact(object["meta_meta_msg"], "fake-msg")
        assertExact(object["meta_ts"], "fake-ts")
        assertExact(object["logger"], "lodestar.dns")
    }

    // MARK: metadata, levels, errors

    func test_metadataPrecedenceCallBeatsProviderBeatsHandler() {
        let provider = Logger.MetadataProvider { ["shared": "provider", "fromProvider": "p", "both": "provider"] }
        for format in [LogFormat.json, .logfmt] {
            var (logger, output) = makeLogger(format, provider: provider)
            logger[metadataKey: "shared"] = "handler"
            logger[metadataKey: "fromHandler"] = "h"
            logger[metadataKey: "both"] = "handler"
            logger[metadataKey: "call"] = "handler"
            XCTAssertEqual(logger[metadataKey: "fromHandler"], "h")
            logger.info("m", metadata: ["call": "call", "both": "call"])
            let line = onlyLine(output)
            let fields: [String: String]
            if format == .json {
                fields = jsonObject(line).compactMapValues { $0 as? String }
            } else {
                fields = Dictionary(
                    (LogfmtParser.parse(line) ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            }
            XCTAssertEqual(fields["shared"], "provider", line)
            XCTAssertEqual(fields["fromProvider"], "p", line)
            XCTAssertEqual(fields["fromHandler"], "h", line)
            XCTAssertEqual(fields["both"], "call", line)
            XCTAssertEqual(fields["call"], "call", line)
        }
    }

    func test_handlerMetadataIsAValue() {
        let output = LogOutput.capture()
        var a = StructuredLogHandler(label: "a", format: .logfmt, output: output, clock: { Self.fixedDate })
        a[metadataKey: "x"] = "1"
        var b = a
        b[metadataKey: "x"] = "2"
        b.logLevel = .error
        XCTAssertEqual(a[metadataKey: "x"], "1")
        XCTAssertEqual(a.logLevel, .info, "default level")
        XCTAssertEqual(b.metadata, ["x": "2"])
    }

    func test_levelFilteringViaLogLevel() {
        var (logger, output) = makeLogger(.logfmt, level: .warning)
        logger.trace("t")
        logger.debug("d")
        logger.info("i")
        logger.notice("n")
        logger.warning("w")
        logger.error("e")
        logger.critical("c")
        XCTAssertEqual(
            output.captured.compactMap { LogfmtParser.parse($0)?.first { $0.key == "level" }?.value },
            ["warning", "error", "critical"]
        )
        logger.logLevel = .trace
        logger.trace("t2")
        XCTAssertEqual(output.captured.count, 4)
        XCTAssertTrue(output.captured.last?.hasSuffix("level=trace logger=lodestar.dns msg=t2") ?? false)
    }

    struct BoomError: Error, CustomStringConvertible {
        var description: String { "boom \"quoted\"" }
    }

    func test_errorBecomesMetadata() {
        let (logger, output) = makeLogger(.json)
        logger.error("failed", error: BoomError())
        let object = jsonObject(onlyLine(output))
        assertExact(object["error.message"], "boom \"quoted\"")
        XCTAssertTrue((object["error.type"] as? String)?.hasSuffix("BoomError") ?? false, "\(object)")
    }

    // MARK: text

    func test_textLooksLikeStreamLogHandler() {
        let (logger, output) = makeLogger(.text)
        logger.info("serving\nnext", metadata: ["zone": "example.test.", "note": "two words"])
        XCTAssertEqual(
            onlyLine(output),
            #"2026-11-25T19:44:00+0000 info lodestar.dns: note="two words" zone=example.test. [LodestarLoggingTests] serving\nnext"#
        )
        let (bare, bareOutput) = makeLogger(.text, label: "")
        bare.notice("hi")
        XCTAssertEqual(onlyLine(bareOutput), "2026-11-25T19:44:00+0000 notice: [LodestarLoggingTests] hi")
    }

    // MARK: timestamps

    func test_timestamps() {
        let cases: [(Double, String)] = [
            (0, "1970-01-01T00:00:00.000Z"),
            (-0.001, "1969-12-31T23:59:59.999Z"),
            (-86_400.5, "1969-12-30T23:59:59.500Z"),
            (951_868_799.999, "2000-02-29T23:59:59.999Z"),
            (951_868_800, "2000-03-01T00:00:00.000Z"),
            (1_795_635_840.123, "2026-11-25T19:44:00.123Z"),
            (1_795_635_840.9999, "2026-11-25T19:44:00.999Z"),
            (4_107_542_400, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799.999, "9999-12-31T23:59:59.999Z"),
            (1e300, "9999-12-31T23:59:59.999Z"),
            (.infinity, "9999-12-31T23:59:59.999Z"),
            (-.infinity, "0000-01-01T00:00:00.000Z"),
            (-1e20, "0000-01-01T00:00:00.000Z"),
            (.nan, "1970-01-01T00:00:00.000Z"),
        ]
        for (seconds, expected) in cases {
            let (logger, output) = makeLogger(.json, date: Date(timeIntervalSince1970: seconds))
            logger.info("m")
            assertExact(jsonObject(onlyLine(output))["ts"], expected)
        }
        // Cross-check against Foundation over a spread of instants (leap years, century rules, negatives).
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var seconds: Int64 = -2_208_988_800  // 1900-01-01
        while seconds < 4_102_444_800 {  // 2100-01-01
            var out = ""
            LineRenderer.appendTimestamp(seconds * 1000 + 250, rfc3339: true, to: &out)
            XCTAssertEqual(out, formatter.string(from: Date(timeIntervalSince1970: Double(seconds) + 0.25)))
            seconds += 7_777_777
        }
    }

    func test_textTimestampFormat() {
        var out = ""
        LineRenderer.appendTimestamp(1_795_635_840_123, rfc3339: false, to: &out)
        XCTAssertEqual(out, "2026-11-25T19:44:00+0000")
    }

    // MARK: robustness

    func test_neverCrashesOnHostileInput() {
        var generator = SplitMix64(seed: 0x5EED)
        func randomString(_ length: Int) -> String {
            var scalars = String.UnicodeScalarView()
            for _ in 0..<length {
                let pick = generator.next() % 4
                let value: UInt32
                switch pick {
                case 0: value = UInt32(generator.next() % 0x80)
                case 1: value = UInt32(generator.next() % 0x100)
                case 2: value = UInt32(generator.next() % 0x3000)
                default: value = UInt32(generator.next() % 0x110000)
                }
                scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            }
            return String(scalars)
        }
        // Invalid UTF-8 (repaired by String), lone continuation bytes, overlong encodings.
        let invalid = String(decoding: [0xFF, 0xC0, 0x80, 0xED, 0xA0, 0x80, 0x61, 0xF4, 0x90, 0x80, 0x80], as: UTF8.self)
        for format in LogFormat.allCases {
            let (logger, output) = makeLogger(format)
            for _ in 0..<200 {
                var metadata: Logger.Metadata = [:]
                for _ in 0..<Int(generator.next() % 6) {
                    metadata[randomString(Int(generator.next() % 8))] = .string(randomString(Int(generator.next() % 40)))
                }
                metadata[invalid] = .string(invalid)
                logger.info("\(randomString(Int(generator.next() % 60)))", metadata: metadata)
            }
            XCTAssertEqual(output.captured.count, 200)
            for line in output.captured {
                XCTAssertFalse(line.contains("\n") || line.contains("\r"))
                if format == .json { _ = jsonObject(line) }
                if format == .logfmt { XCTAssertNotNil(LogfmtParser.parse(line), line) }
            }
        }
    }

    func test_hugeAndDeepMetadata() {
        var deep: Logger.MetadataValue = "leaf"
        for i in 0..<1_000 { deep = i.isMultiple(of: 2) ? ["d": deep] : [deep] }
        var metadata: Logger.Metadata = ["deep": deep, "big": .string(String(repeating: "x\"\n", count: 300_000))]
        for i in 0..<5_000 { metadata["key\(i)"] = .string("value \(i)") }
        for format in LogFormat.allCases {
            let (logger, output) = makeLogger(format)
            logger.info("huge", metadata: metadata)
            let line = onlyLine(output)
            XCTAssertGreaterThan(line.utf8.count, 900_000)
            if format == .json {
                let object = jsonObject(line)
                XCTAssertEqual(object.count, 4 + 5_002)
                assertExact(object["big"], String(repeating: "x\"\n", count: 300_000))
                assertExact(object["key4999"], "value 4999")
            }
            if format == .logfmt {
                let fields = LogfmtParser.parse(line) ?? []
                XCTAssertEqual(fields.count, 4 + 5_002)
            }
        }
    }

    // MARK: concurrency

    /// 8 threads × 500 lines; every line arrives complete and exactly once.
    func runConcurrently(output: LogOutput, format: LogFormat) {
        let threads = 8
        let perThread = 500
        let group = DispatchGroup()
        for t in 0..<threads {
            group.enter()
            let thread = Thread {
                let handler = StructuredLogHandler(label: "t\(t)", format: format, output: output)
                let logger = Logger(label: "t\(t)", factory: { _ in handler })
                let padding = String(repeating: "p", count: 100 + t * 37)
                for i in 0..<perThread {
                    logger.info("line", metadata: ["thread": "\(t)", "seq": "\(i)", "pad": .string(padding)])
                }
                group.leave()
            }
            thread.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success)
    }

    func checkConcurrentLines(_ lines: [String], format: LogFormat) {
        XCTAssertEqual(lines.count, 8 * 500)
        var seen = Set<String>()
        for line in lines {
            let thread: String?
            let seq: String?
            let pad: String?
            if format == .json {
                let object = jsonObject(line)
                (thread, seq, pad) = (object["thread"] as? String, object["seq"] as? String, object["pad"] as? String)
            } else {
                let fields = Dictionary(
                    (LogfmtParser.parse(line) ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                (thread, seq, pad) = (fields["thread"], fields["seq"], fields["pad"])
            }
            guard let thread, let seq, let pad, let t = Int(thread) else {
                XCTFail("incomplete line: \(line)")
                continue
            }
            XCTAssertEqual(pad.count, 100 + t * 37, line)
            XCTAssertTrue(seen.insert("\(thread)/\(seq)").inserted, "duplicate \(thread)/\(seq)")
        }
        XCTAssertEqual(seen.count, 4000)
    }

    func test_concurrentWritersToCapture() {
        for format in [LogFormat.logfmt, .json] {
            let output = LogOutput.capture()
            runConcurrently(output: output, format: format)
            checkConcurrentLines(output.captured, format: format)
        }
    }

    /// The same through a real file descriptor: one write(2) per line, no torn or interleaved lines.
    func test_concurrentWritersToFileDescriptor() throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("lodestar-logging-\(UUID().uuidString).log").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer {
            close(fd)
            unlink(path)
        }
        runConcurrently(output: LogOutput(fileDescriptor: fd), format: .json)
        let contents = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(contents.hasSuffix("\n"))
        let lines = contents.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        checkConcurrentLines(lines, format: .json)
        XCTAssertEqual(LogOutput(fileDescriptor: fd).captured, [], "a file descriptor output captures nothing")
    }

    func test_formatNamesAndBootstrapGuard() {
        XCTAssertEqual(LogFormat.allCases.map(\.rawValue), ["logfmt", "json", "text"])
        XCTAssertEqual(LogFormat(rawValue: "json"), .json)
        // LodestarLogging.bootstrap is not called here: it would replace the process-wide handler for every
        // other test target that shares this test process.
    }
}

// MARK: - helpers

/// A minimal logfmt reader: `key=value` pairs separated by single spaces; quoted values use `\\ \" \n \r \t \uXXXX`.
enum LogfmtParser {
    static func parse(_ line: String) -> [(key: String, value: String)]? {
        let scalars = Array(line.unicodeScalars)
        var result: [(key: String, value: String)] = []
        var i = 0
        while i < scalars.count {
            var key = String.UnicodeScalarView()
            while i < scalars.count && scalars[i] != "=" {
                if scalars[i] == " " || scalars[i] == "\"" { return nil }
                key.append(scalars[i])
                i += 1
            }
            guard i < scalars.count, !key.isEmpty else { return nil }
            i += 1  // '='
            var value = String.UnicodeScalarView()
            if i < scalars.count && scalars[i] == "\"" {
                i += 1
                var closed = false
                while i < scalars.count {
                    let c = scalars[i]
                    if c == "\"" {
                        closed = true
                        i += 1
                        break
                    }
                    if c == "\\" {
                        guard i + 1 < scalars.count else { return nil }
                        let e = scalars[i + 1]
                        i += 2
                        switch e {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        case "r": value.append("\r")
                        case "t": value.append("\t")
                        case "u":
                            guard i + 4 <= scalars.count,
                                let code = UInt32(String(String.UnicodeScalarView(scalars[i..<i + 4])), radix: 16),
                                let scalar = Unicode.Scalar(code)
                            else { return nil }
                            value.append(scalar)
                            i += 4
                        default: return nil
                        }
                        continue
                    }
                    if c.value < 0x20 { return nil }  // raw control characters are never allowed
                    value.append(c)
                    i += 1
                }
                guard closed else { return nil }
            } else {
                while i < scalars.count && scalars[i] != " " {
                    let c = scalars[i]
                    if c == "\"" || c == "=" || c.value < 0x20 || (c.value >= 0x7F && c.value <= 0x9F) { return nil }
                    value.append(c)
                    i += 1
                }
            }
            result.append((String(key), String(value)))
            if i < scalars.count {
                guard scalars[i] == " ", i + 1 < scalars.count else { return nil }
                i += 1
            }
        }
        return result
    }
}

/// Top-level keys of a JSON object line, in order (JSONSerialization loses order).
enum JSONKeyScanner {
    static func topLevelKeys(_ line: String) -> [String] {
        let scalars = Array(line.unicodeScalars)
        var keys: [String] = []
        var depth = 0
        var i = 0
        var expectKey = false
        while i < scalars.count {
            let c = scalars[i]
            switch c {
            case "{", "[":
                depth += 1
                expectKey = (c == "{" && depth == 1)
                i += 1
            case "}", "]":
                depth -= 1
                i += 1
            case ",":
                if depth == 1 { expectKey = true }
                i += 1
            case "\"":
                var text = String.UnicodeScalarView()
                i += 1
                while i < scalars.count && scalars[i] != "\"" {
                    if scalars[i] == "\\" {
                        text.append(scalars[i])
                        i += 1
                    }
                    if i < scalars.count { text.append(scalars[i]) }
                    i += 1
                }
                i += 1
                if expectKey && depth == 1 {
                    keys.append(String(text))
                    expectKey = false
                }
            default:
                i += 1
            }
        }
        return keys
    }
}

/// Deterministic pseudo-random numbers for the hostile-input test.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
