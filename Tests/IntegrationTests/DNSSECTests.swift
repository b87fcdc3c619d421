import Foundation
import XCTest

/// Online DNSSEC signing, end to end: keys made by `lodestar dnssec keygen`, the DS from `lodestar dnssec ds`, and the
/// answers of a real `lodestar dns` validated by `delv` (BIND's validator) and by dnspython — geo answers per client
/// subnet, compact denials, truncation with DO, Ed25519, a key rollover and a broken key file on reload.
final class DNSSECTests: XCTestCase {
    /// A DS as `lodestar dnssec ds` prints it: `example.test. IN DS TAG ALG 2 HEX`.
    struct DS {
        let tag: String, algorithm: String, digest: String
        init?(_ line: Substring) {
            let p = line.split(separator: " ")
            guard p.count == 7, p[2] == "DS" else { return nil }
            tag = String(p[3]); algorithm = String(p[4]); digest = String(p[6])
        }
        var anchor: String { "trust-anchors { \"example.test.\" static-ds \(tag) \(algorithm) 2 \"\(digest)\"; };\n" }
    }

    private func lodestar(_ arguments: [String], in folder: URL) throws -> CommandResult {
        let binary = try IntegrationEnvironment.lodestarBinary()
        return try runCommand(binary.path, arguments, timeout: 20, currentDirectory: folder)
    }

    /// `lodestar dnssec keygen` into `folder`; returns the .private file's name.
    private func keygen(_ folder: URL, algorithm: String = "13") throws -> String {
        let r = try lodestar(["dnssec", "keygen", "--zone", "example.test", "--algorithm", algorithm, "--directory", folder.path], in: folder)
        XCTAssertEqual(r.status, 0, r.stderr)
        guard let line = r.stdout.split(separator: "\n").first(where: { $0.hasSuffix(".private") }) else {
            throw IntegrationError("keygen printed no .private file: \(r.stdout)\(r.stderr)")
        }
        return (String(line) as NSString).lastPathComponent
    }

    private func ds(_ server: LodestarServer, key: String? = nil) throws -> [DS] {
        let args = ["dnssec", "ds", "--topology", server.topologyPath] + (key.map { ["--key", $0, "--zone", "example.test"] } ?? [])
        let r = try lodestar(args, in: server.folder)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r.stdout.split(separator: "\n").compactMap(DS.init)
    }

    private func topology(keys: [Any]) throws -> [String: Any] {
        var t = try IntegrationEnvironment.defaultTopology()
        try t.edit("dns") { $0["dnssec"] = ["keys": keys] }
        // 422 octets of TXT: a 512-octet UDP answer holds it alone but not with its RRSIG.
        try t.addRecord(["name": "big", "type": "TXT", "value": [String(repeating: "a", count: 210), String(repeating: "b", count: 210)]])
        return t
    }

    /// delv against the server with `ds` as the only trust anchor.
    private func delv(_ server: LodestarServer, _ ds: DS, _ name: String, _ type: String = "A") throws -> String {
        guard let delv = IntegrationEnvironment.which("delv") else { throw XCTSkip("delv (bind9-dnsutils) is not installed") }
        let anchor = server.folder.appendingPathComponent("anchor-\(ds.tag).conf")
        try Data(ds.anchor.utf8).write(to: anchor)
        let r = try runCommand(delv, ["@127.0.0.1", "-p", "\(server.port)", "-a", anchor.path, "+root=example.test", name, type],
                               timeout: 15)
        return r.stdout + r.stderr
    }

    func test_signedAnswersValidateWithDelvAndDnspython() throws {
        let server = try LodestarServer(topology: [:])
        addTeardownBlock { server.cleanUp() }
        let key = try keygen(server.folder)
        try server.writeTopology(try topology(keys: [key]))
        try server.start()
        let dsList = try ds(server)
        let anchor = try XCTUnwrap(dsList.first, "lodestar dnssec ds printed no DS")

        for (name, type, expect) in [("www.example.test", "A", "; fully validated"),
                                     ("api.example.test", "A", "; fully validated"),  // CNAME to the geo service
                                     ("example.test", "MX", "; fully validated"),
                                     ("example.test", "DNSKEY", "; fully validated"),
                                     ("example.test", "SOA", "; fully validated"),
                                     ("example.test", "NS", "; fully validated"),
                                     ("no-such-name.example.test", "A", "; negative response, fully validated"),
                                     ("www.example.test", "TXT", "; negative response, fully validated")] {
            let out = try delv(server, anchor, name, type)
            XCTAssertTrue(out.contains(expect), "delv \(name) \(type):\n\(out)")
            print("DNSSEC-FIGURES delv \(name) \(type): \(out.split(separator: "\n").first ?? "")")
        }
        // Without DO nothing changes: no RRSIG, NXDOMAIN stays NXDOMAIN.
        let plain = try server.dig("www.example.test")
        XCTAssertFalse(plain.output.contains("RRSIG"), plain.output)
        XCTAssertEqual(try server.dig("no-such-name.example.test").status, "NXDOMAIN")
        let signed = try server.dig("no-such-name.example.test", "A", "+dnssec")
        XCTAssertEqual(signed.status, "NOERROR", "compact denial (RFC 9824)")
        XCTAssertTrue(signed.output.contains("NSEC") && signed.output.contains("TYPE128"), signed.output)

        let python = try EdgeTools.requirePython()
        let r = try runCommand(python, [IntegrationEnvironment.testsFolder.appendingPathComponent("dnssec_checks.py").path,
                                        "\(server.port)", "example.test", anchor.tag, anchor.algorithm, anchor.digest], timeout: 30)
        print("DNSSEC-FIGURES dnspython: \(r.stdout)")
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("\"ok\": true"), r.stdout + r.stderr)
    }

    func test_ed25519KeyValidates() throws {
        let server = try LodestarServer(topology: [:])
        addTeardownBlock { server.cleanUp() }
        let key = try keygen(server.folder, algorithm: "ed25519")
        XCTAssertTrue(key.contains("+015+"), key)
        try server.writeTopology(try topology(keys: [key]))
        try server.start()
        let anchor = try XCTUnwrap(try ds(server).first)
        XCTAssertEqual(anchor.algorithm, "15")
        let out = try delv(server, anchor, "www.example.test")
        XCTAssertTrue(out.contains("; fully validated"), out)
    }

    /// Pre-publish, switch, retire (RFC 6781 §4.1.2 double signature of the DNSKEY RRset): at every step a resolver
    /// holding either DS still validates; a broken key file refuses the reload and the running keys stay.
    func test_keyRolloverAndABrokenKeyFile() throws {
        let server = try LodestarServer(topology: [:])
        addTeardownBlock { server.cleanUp() }
        let old = try keygen(server.folder)
        let new = try keygen(server.folder)
        try server.writeTopology(try topology(keys: [old]))
        try server.start()
        let oldDS = try XCTUnwrap(try ds(server, key: old).first)
        let newDS = try XCTUnwrap(try ds(server, key: new).first)
        func signers(_ name: String = "www.example.test", _ type: String = "A") throws -> Set<String> {
            let d = try server.dig(name, type, "+dnssec")
            return Set(d.answer.filter { $0.type == "RRSIG" }.compactMap { $0.data.split(separator: " ").dropFirst(6).first.map(String.init) })
        }
        XCTAssertEqual(try signers(), [oldDS.tag])

        // 1. Pre-publish: the new key is in DNSKEY, only the old one signs.
        try server.writeTopology(try topology(keys: [old, ["file": new, "sign": false]]))
        XCTAssertTrue(try server.reload().contains("reloaded"), server.log)
        XCTAssertEqual(try server.dig("example.test", "DNSKEY").answer.filter { $0.type == "DNSKEY" }.count, 2)
        XCTAssertEqual(try signers(), [oldDS.tag])
        XCTAssertTrue(try delv(server, oldDS, "www.example.test").contains("; fully validated"))

        // 2. Switch: the new key signs, the old one stays published; the DNSKEY RRset carries both signatures.
        try server.writeTopology(try topology(keys: [["file": old, "sign": false], new]))
        XCTAssertTrue(try server.reload().contains("reloaded"), server.log)
        XCTAssertEqual(try signers(), [newDS.tag])
        XCTAssertEqual(try signers("example.test", "DNSKEY"), [oldDS.tag, newDS.tag])
        for anchor in [oldDS, newDS] {
            let out = try delv(server, anchor, "www.example.test")
            XCTAssertTrue(out.contains("; fully validated"), "DS \(anchor.tag) after the switch:\n\(out)")
        }

        // 3. Retire the old key.
        try server.writeTopology(try topology(keys: [new]))
        XCTAssertTrue(try server.reload().contains("reloaded"), server.log)
        XCTAssertEqual(try server.dig("example.test", "DNSKEY").answer.filter { $0.type == "DNSKEY" }.count, 1)
        XCTAssertTrue(try delv(server, newDS, "www.example.test").contains("; fully validated"))

        // A broken key file: the reload is refused with the setting and the reason; the running key signs on.
        try Data("Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AAAA\n".utf8)
            .write(to: server.folder.appendingPathComponent("broken.private"))
        try server.writeTopology(try topology(keys: [new, "broken.private"]))
        let refused = try server.reload()
        XCTAssertTrue(refused.contains("reload refused") && refused.contains("dns.dnssec.keys[1]"), refused)
        XCTAssertTrue(refused.contains("not a valid ECDSAP256SHA256 key"), refused)
        XCTAssertEqual(try signers(), [newDS.tag])
        XCTAssertTrue(try delv(server, newDS, "www.example.test").contains("; fully validated"))
    }

    /// A delegation in a signed zone: the DS query for the cut is answered here, NODATA proven by an NSEC that shows NS
    /// and no DS (an insecure delegation, validated by delv); a referral below the cut carries that NSEC, signed,
    /// beside the unsigned NS.
    func test_insecureDelegation() throws {
        let server = try LodestarServer(topology: [:])
        addTeardownBlock { server.cleanUp() }
        let key = try keygen(server.folder)
        var t = try topology(keys: [key])
        try t.addRecord(["name": "sub", "type": "NS", "value": "ns.sub.example.test"])
        try t.addRecord(["name": "ns.sub", "type": "A", "value": "127.0.0.53"])
        try server.writeTopology(t)
        try server.start()
        let anchor = try XCTUnwrap(try ds(server).first)
        let noDS = try delv(server, anchor, "sub.example.test", "DS")
        XCTAssertTrue(noDS.contains("; negative response, fully validated"), noDS)
        let d = try server.dig("sub.example.test", "DS", "+dnssec")
        XCTAssertEqual(d.status, "NOERROR")
        XCTAssertTrue(d.flags.contains("aa"), "the parent side answers DS with authority: \(d.output)")
        let nsec = try XCTUnwrap(d.authority.first { $0.type == "NSEC" }, d.output)
        XCTAssertTrue(nsec.data.hasSuffix("NS RRSIG NSEC"), nsec.data)
        let referral = try server.dig("x.sub.example.test", "A", "+dnssec")
        XCTAssertFalse(referral.flags.contains("aa"), referral.output)
        XCTAssertEqual(Set(referral.authority.map(\.type)), ["NS", "NSEC", "RRSIG"], referral.output)
        XCTAssertEqual(referral.authority.filter { $0.type == "RRSIG" }.count, 1, "only the NSEC is signed: \(referral.output)")
    }

    /// As shipped (`"dnssec": {"keys": []}`), `lodestar dns` signs with a key made for the run and says so with its DS.
    func test_noKeyFileSignsWithARunKeyAndSaysSo() throws {
        let server = try LodestarServer(topology: try topology(keys: []))
        addTeardownBlock { server.cleanUp() }
        try server.start()
        let d = try server.dig("www.example.test", "A", "+dnssec")
        XCTAssertEqual(d.answer.filter { $0.type == "RRSIG" }.count, 1, d.output)
        XCTAssertTrue(server.log.contains("signing with a key made for this run") && server.log.contains("IN DS"), server.log)
        // A reload keeps the run key (the DNSKEY does not change under resolvers' feet).
        let before = try server.dig("example.test", "DNSKEY").answer.map(\.data)
        XCTAssertTrue(try server.reload().contains("reloaded"))
        XCTAssertEqual(try server.dig("example.test", "DNSKEY").answer.map(\.data), before)
    }
}
