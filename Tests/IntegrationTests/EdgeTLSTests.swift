import Foundation
import XCTest

/// HTTPS listeners: SNI certificate choice (first certificate the default), TLS ≥ 1.2 only, plain and TLS listeners at
/// once, X-Forwarded-Proto https.
final class EdgeTLSTests: EdgeTestCase {
    /// Self-signed EC certificates for a.example.test and b.example.test (+ *.b.example.test) in the test folder.
    private func makeCertificates() throws {
        guard IntegrationEnvironment.which("openssl") != nil else { throw XCTSkip("openssl CLI not found") }
        for (name, san) in [("a", "DNS:a.example.test"), ("b", "DNS:b.example.test,DNS:*.b.example.test")] {
            try makeCertificate(key: "\(name).key", cert: "\(name).pem", commonName: "\(name).example.test", san: san)
        }
    }

    /// Relative certificate paths: they resolve against the topology file's folder.
    private let tlsSettings: [String: Any] = [
        "certificates": [["cert": "a.pem", "key": "a.key", "serverNames": ["a.example.test"]],
                         ["cert": "b.pem", "key": "b.key", "serverNames": ["b.example.test", "*.b.example.test"]]],
        "minVersion": "1.2",
    ]

    private func startTLSEdge() throws -> (EdgeNode, EdgeOrigin, UInt16) {
        try makeCertificates()
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()], tls: tlsSettings)
        guard let port = edge.ports.tls else { throw IntegrationError("no TLS port") }
        return (edge, origin, port)
    }

    private func curl(_ arguments: [String]) throws -> CommandResult {
        guard let curl = IntegrationEnvironment.which("curl") else { throw XCTSkip("curl not found") }
        return try runCommand(curl, ["-sS", "--max-time", "10"] + arguments, timeout: 15, currentDirectory: workFolder)
    }

    /// The subject line `openssl s_client` prints for a handshake with this SNI (nil: no SNI sent).
    private func certificateSubject(port: UInt16, serverName: String?) throws -> (subject: String?, output: String) {
        guard let openssl = IntegrationEnvironment.which("openssl") else { throw XCTSkip("openssl CLI not found") }
        let sni = serverName.map { ["-servername", $0] } ?? ["-noservername"]
        let r = try runCommand(openssl, ["s_client", "-connect", "127.0.0.1:\(port)"] + sni, timeout: 15)
        let out = r.stdout + r.stderr
        let subject = out.split(separator: "\n").first { $0.hasPrefix("subject=") }.map(String.init)
        return (subject, out)
    }

    /// curl with --resolve and the right CA reaches the origin over HTTPS, which sees X-Forwarded-Proto: https.
    func test_tls_curlThroughSNIWithForwardedProto() throws {
        let (_, origin, port) = try startTLSEdge()
        for (host, ca) in [("a.example.test", "a.pem"), ("b.example.test", "b.pem"), ("x.b.example.test", "b.pem")] {
            let r = try curl(["--resolve", "\(host):\(port):127.0.0.1", "--cacert", ca, "https://\(host):\(port)/echo?via=\(host)"])
            XCTAssertEqual(r.status, 0, "curl https://\(host) with \(ca): \(r.stderr)")
            let json = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
            XCTAssertEqual(json?["path"] as? String, "/echo?via=\(host)", r.stdout)
            let headers = (json?["headers"] as? [[String]] ?? []).filter { $0.count == 2 }
            XCTAssertEqual(headers.filter { $0[0].lowercased() == "x-forwarded-proto" }.map { $0[1] }, ["https"], r.stdout)
        }
        // The wrong CA for the name fails verification (the certificate really is the SNI one).
        let wrong = try curl(["--resolve", "b.example.test:\(port):127.0.0.1", "--cacert", "a.pem", "https://b.example.test:\(port)/echo"])
        XCTAssertNotEqual(wrong.status, 0, "b.example.test must not be served a's certificate")
        XCTAssertEqual(try origin.count(), 3)
    }

    /// s_client: SNI b.example.test (and *.b) gets b's certificate; an unknown name or no SNI gets the first (a).
    func test_tls_sniChoosesCertificate_firstIsDefault() throws {
        let (_, _, port) = try startTLSEdge()
        let expectations: [(String?, String)] = [("a.example.test", "a.example.test"), ("b.example.test", "b.example.test"),
                                                 ("deep.b.example.test", "b.example.test"), ("unknown.example.test", "a.example.test"),
                                                 (nil, "a.example.test")]
        for (sni, cn) in expectations {
            let s = try certificateSubject(port: port, serverName: sni)
            XCTAssertEqual(s.subject?.replacingOccurrences(of: " ", with: ""), "subject=CN=\(cn)", "SNI \(sni ?? "none"):\n\(s.output)")
        }
    }

    /// TLS 1.1 and 1.0 are refused by the server (protocol version alert); 1.2 and 1.3 work.
    func test_tls_oldVersionsRefused() throws {
        let (_, _, port) = try startTLSEdge()
        guard let openssl = IntegrationEnvironment.which("openssl") else { throw XCTSkip("openssl CLI not found") }
        for version in ["-tls1_1", "-tls1"] {
            // SECLEVEL=0 so the client itself is willing to offer the old protocol.
            let r = try runCommand(openssl, ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "a.example.test", version,
                                             "-cipher", "DEFAULT@SECLEVEL=0"], timeout: 15)
            let out = r.stdout + r.stderr
            XCTAssertNotEqual(r.status, 0, "\(version) handshake succeeded:\n\(out)")
            XCTAssertFalse(out.contains("subject=CN"), "\(version): a certificate was sent:\n\(out)")
            XCTAssertTrue(out.contains("alert protocol version") || out.contains("unsupported protocol")
                          || out.contains("no protocols available"), "\(version): refused how?\n\(out)")
            print("EDGE-FIGURES: \(version) -> \(out.split(separator: "\n").first { $0.contains("error") } ?? "")")
        }
        for version in ["-tls1_2", "-tls1_3"] {
            let r = try runCommand(openssl, ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "a.example.test", version],
                                   timeout: 15)
            XCTAssertTrue((r.stdout + r.stderr).contains("subject=CN = a.example.test"), "\(version) must work:\n\(r.stdout)\(r.stderr)")
        }
        let old = try curl(["--resolve", "a.example.test:\(port):127.0.0.1", "--cacert", "a.pem", "--tlsv1.0", "--tls-max", "1.1",
                            "https://a.example.test:\(port)/echo"])
        XCTAssertNotEqual(old.status, 0, "curl --tls-max 1.1 must fail: \(old.stdout)")
    }

    /// Plain HTTP and HTTPS listeners serve at the same time.
    func test_tls_plainAndHTTPSListenersTogether() throws {
        let (edge, origin, port) = try startTLSEdge()
        let plain = try EdgeConnection(port: edge.port)
        let httpsPort = port
        let tlsResults = EdgeCollector<Int32>()
        let running = edgeStartThreads(2) { _ in
            for _ in 0..<3 {
                let r = try? runCommand("/usr/bin/env", ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                                                          "--resolve", "a.example.test:\(httpsPort):127.0.0.1", "-k",
                                                          "https://a.example.test:\(httpsPort)/echo"], timeout: 15)
                tlsResults.append(r?.stdout == "200" ? 0 : (r?.status ?? -1))
            }
        }
        var plainStatuses = [Int]()
        for i in 0..<30 {
            try plain.send(EdgeRequest.make("GET", "/echo?plain=\(i)"))
            let r = try plain.readResponse()
            plainStatuses.append(r.status)
            XCTAssertEqual(r.echoed("X-Forwarded-Proto"), ["http"])
        }
        XCTAssertEqual(running.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(plainStatuses, Array(repeating: 200, count: 30))
        XCTAssertEqual(tlsResults.all, Array(repeating: 0, count: 6), "HTTPS requests (0 = 200 OK)")
        XCTAssertEqual(try origin.count(), 36)
    }

    /// The SHA-256 fingerprint of the certificate the listener serves to a new connection.
    private func servedFingerprint(port: UInt16) throws -> String? {
        guard let openssl = IntegrationEnvironment.which("openssl") else { throw IntegrationError("openssl CLI not found") }
        let r = try runCommand("/bin/sh", ["-c", "\(openssl) s_client -connect 127.0.0.1:\(port) -servername a.example.test "
                                           + "</dev/null 2>/dev/null | \(openssl) x509 -noout -fingerprint -sha256"], timeout: 15)
        return r.stdout.split(separator: "=", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// A renewed certificate (same file names, new contents) is served to new connections after SIGHUP, under load,
    /// with no failed request; an established keep-alive connection goes on; a broken file refuses the reload and
    /// the running certificate stays.
    func test_certificateRotatedUnderLoadWithoutFailures() throws {
        try makeCertificates()
        let origin = try startOrigin("o1")
        let edge = try startEdge(pools: ["web": pool([origin])], routes: [route()],
                                 tls: ["certificates": [["cert": "a.pem", "key": "a.key", "serverNames": ["a.example.test"]]]])
        guard let port = edge.ports.tls, let pid = edge.pid else { throw IntegrationError("no TLS port") }
        let before = try XCTUnwrap(try servedFingerprint(port: port))
        let load = try ScriptProcess(python: "tls_rotation_client.py", ["\(port)", "5", "4"], folder: workFolder, name: "tls-load")
        addTeardownBlock { load.stop() }
        try load.waitFor("running", timeout: 10)
        usleep(1_000_000)
        // Renew: a new key and certificate for the same name, written over the old files.
        try makeCertificate(key: "a.key.new", cert: "a.pem.new", commonName: "a.example.test", san: "DNS:a.example.test")
        for name in ["a.key", "a.pem"] {  // rename(2): each file is replaced whole
            XCTAssertEqual(rename(workFolder.appendingPathComponent(name + ".new").path, workFolder.appendingPathComponent(name).path), 0)
        }
        kill(pid, SIGHUP)
        XCTAssertNotNil(eventually(timeout: 5) { edge.log.contains("tlsCertificatesReRead=1") }, edge.log)
        XCTAssertTrue(load.waitForEnd(timeout: 30), load.output)
        let r = load.lastJSON() ?? [:]
        print("certificate rotation under load: \(r)")
        XCTAssertGreaterThan(r["requests"] as? Int ?? 0, 50, "\(r)")
        XCTAssertEqual(r["failed"] as? Int, 0, "no request failed across the rotation: \(r)")
        XCTAssertEqual(r["kept_alive_failed"] as? Int, 0, "the established connection went on: \(r)")
        let after = try XCTUnwrap(try servedFingerprint(port: port))
        XCTAssertNotEqual(after, before, "new connections get the renewed certificate")
        // A broken certificate file: the reload is refused and the running certificate stays.
        try Data("not a certificate".utf8).write(to: workFolder.appendingPathComponent("a.pem"))
        kill(pid, SIGHUP)
        XCTAssertNotNil(eventually(timeout: 5) { edge.log.contains("listen[1].tls: cannot load TLS certificate") && edge.log.contains("keeping the running configuration") }, edge.log)
        XCTAssertEqual(try servedFingerprint(port: port), after)
        XCTAssertTrue(edge.isRunning)
    }
}
