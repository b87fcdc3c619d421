import Foundation
import XCTest

/// Runs dnspython_checks.py (wire checks independent of dig) against a started server.
final class DNSPythonTests: IntegrationTestCase {
    func test_dnspythonWireChecks() throws {
        guard let python = IntegrationEnvironment.which("python3") else {
            print("skipping dnspython checks: python3 not found on PATH")
            throw XCTSkip("python3 not found on PATH")
        }
        let probe = try runCommand(python, ["-c", "import dns.edns, dns.message, dns.query, dns.version; print(dns.version.version)"],
                                   timeout: 20)
        guard probe.status == 0 else {
            print("skipping dnspython checks: dnspython not importable by \(python): \(probe.stderr)")
            throw XCTSkip("dnspython is not installed for \(python) (pip install dnspython)")
        }
        let script = IntegrationEnvironment.testsFolder.appendingPathComponent("dnspython_checks.py").path
        let server = try startServer()
        let r = try runCommand(python, [script, "--server", "127.0.0.1", "--port", "\(server.port)"], timeout: 40)
        print("dnspython \(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines)):\n\(r.stdout)")
        if !r.stderr.isEmpty { print(r.stderr) }
        XCTAssertFalse(r.timedOut, "dnspython_checks.py timed out")
        XCTAssertEqual(r.status, 0, "dnspython_checks.py failed:\n\(r.stdout)\n\(r.stderr)")
        XCTAssertTrue(r.stdout.contains(" passed, 0 failed"), r.stdout)
        XCTAssertTrue(server.isRunning)
    }
}
