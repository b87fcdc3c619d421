import Foundation
import XCTest

/// A helper program of a test (a Python server, a long-running client) with its output in a file; stopped by pid.
final class ScriptProcess {
    let logPath: String
    private let process = Process()

    /// Starts `python3 SCRIPT ARGS` from the tests folder.
    init(python script: String, _ arguments: [String], folder: URL, name: String) throws {
        let python = try EdgeTools.requirePython()
        logPath = folder.appendingPathComponent("\(name).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [IntegrationEnvironment.testsFolder.appendingPathComponent(script).path] + arguments
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? handle.close()
    }

    var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Waits until the output contains `text`; throws with the output after `timeout`.
    func waitFor(_ text: String, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if output.contains(text) { return }
            if !process.isRunning { break }
            usleep(20_000)
        }
        if output.contains(text) { return }
        throw IntegrationError("\(process.arguments?.first ?? "script") did not print \"\(text)\" within \(timeout) s:\n\(output)")
    }

    /// Waits for the process to end by itself.
    func waitForEnd(timeout: TimeInterval) -> Bool { waitForExit(process, timeout: timeout) }

    /// SIGKILL now (this pid only).
    func kill() {
        guard process.isRunning else { return }
        _ = Foundation.kill(process.processIdentifier, SIGKILL)
        _ = waitForExit(process, timeout: 5)
    }

    func stop() { stopProcess(process, grace: 2) }

    /// The last line of output parsed as a JSON object.
    func lastJSON() -> [String: Any]? {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
}

extension EdgeTestCase {
    /// A self-signed EC P-256 certificate and key made with the openssl CLI in the test folder (valid 2 days).
    /// `san` is the subjectAltName value, e.g. `DNS:a.example.test,DNS:*.a.example.test`.
    func makeCertificate(key: String, cert: String, commonName: String, san: String) throws {
        guard let openssl = IntegrationEnvironment.which("openssl") else { throw IntegrationError("openssl CLI not found") }
        let r = try runCommand(openssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=\(commonName)",
                                         "-addext", "subjectAltName=\(san)"], timeout: 20, currentDirectory: workFolder)
        guard r.status == 0 else { throw IntegrationError("openssl req failed: \(r.stderr)") }
    }

    /// Makes the first (plain) listener of a test topology take h2c with prior knowledge besides HTTP/1.1.
    static func acceptH2C(_ t: inout [String: Any]) {
        var edges = t["edges"] as? [[String: Any]] ?? []
        var listen = edges.first?["listen"] as? [Any] ?? []
        if let first = listen.first as? String { listen[0] = ["address": first, "protocols": ["http/1.1", "h2c"]] }
        if !edges.isEmpty { edges[0]["listen"] = listen }
        t["edges"] = edges
    }

    /// Runs a Python helper to completion and returns its last JSON line.
    func runPythonJSON(_ script: String, _ arguments: [String], timeout: TimeInterval) throws -> [String: Any] {
        let python = try EdgeTools.requirePython()
        let r = try runCommand(python, [IntegrationEnvironment.testsFolder.appendingPathComponent(script).path] + arguments,
                               timeout: timeout, currentDirectory: workFolder)
        guard let line = r.stdout.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let json = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw IntegrationError("\(script) \(arguments.joined(separator: " ")): no JSON (status \(r.status))\n\(r.stdout)\n\(r.stderr)")
        }
        return json
    }

    /// Fails when a Python module is missing (`make deps` installs them).
    func requirePythonModules(_ names: [String]) throws {
        let python = try EdgeTools.requirePython()
        for n in names {
            let r = try runCommand(python, ["-c", "import \(n)"], timeout: 20)
            if r.status != 0 { throw IntegrationError("python module \(n) missing: make deps installs it (pip install \(n))") }
        }
    }
}
