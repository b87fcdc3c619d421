import Dispatch
import LodestarEdge
import LodestarTopology
import XCTest

/// Glob matching and deny rules.
final class DenyRulesTests: XCTestCase {
    func test_globBasics() {
        XCTAssertTrue(GlobPattern("*").matches(""))
        XCTAssertTrue(GlobPattern("*").matches("/any/thing"))
        XCTAssertTrue(GlobPattern("").matches(""))
        XCTAssertFalse(GlobPattern("").matches("a"))
        XCTAssertTrue(GlobPattern("/admin/*").matches("/admin/users/1"), "* crosses slashes")
        XCTAssertTrue(GlobPattern("/admin/*").matches("/admin/"))
        XCTAssertFalse(GlobPattern("/admin/*").matches("/admin"))
        XCTAssertFalse(GlobPattern("/admin/*").matches("/administrator"))
        XCTAssertTrue(GlobPattern("*.php").matches("/wp/index.php"))
        XCTAssertFalse(GlobPattern("*.php").matches("/wp/index.php5"))
        XCTAssertTrue(GlobPattern("/v?/items").matches("/v2/items"))
        XCTAssertFalse(GlobPattern("/v?/items").matches("/v10/items"))
        XCTAssertFalse(GlobPattern("/v?/items").matches("/v/items"))
        XCTAssertTrue(GlobPattern("a**b").matches("ab"))
        XCTAssertTrue(GlobPattern("a*b*c").matches("a-b-b-c"))
        XCTAssertFalse(GlobPattern("a*b*c").matches("a-b-b-"))
        XCTAssertTrue(GlobPattern("*mid*").matches("xxmidyy"))
        XCTAssertTrue(GlobPattern("/exact").matches("/exact"))
        XCTAssertFalse(GlobPattern("/exact").matches("/Exact"))
    }

    func test_globQuestionMarkIsOneByte() {
        XCTAssertTrue(GlobPattern("/caf??").matches("/café"), "é is two UTF-8 bytes")
        XCTAssertFalse(GlobPattern("/caf?").matches("/café"))
    }

    func test_globCaseInsensitive() {
        let g = GlobPattern("*Bot*", caseInsensitive: true)
        XCTAssertTrue(g.matches("Mozilla/5.0 (compatible; BADBOT/1.0)"))
        XCTAssertTrue(g.matches("robot"))
        XCTAssertFalse(g.matches("Mozilla/5.0"))
        XCTAssertFalse(GlobPattern("*Bot*").matches("robot"))
    }

    func test_globOnSubstringsAndBytes() {
        let target = "/search?q=1"
        let path = target[..<(target.firstIndex(of: "?") ?? target.endIndex)]
        XCTAssertTrue(GlobPattern("/sea*").matches(path))
        XCTAssertTrue(GlobPattern("/sea*").matches(path.utf8))
        XCTAssertTrue(GlobPattern("/sea*").matches(utf8: [UInt8]("/search".utf8)))
        XCTAssertFalse(GlobPattern("/sea*").matches(utf8: [UInt8]("/s".utf8)))
    }

    func test_pathologicalPatternFinishesFast() {
        let text = String(repeating: "a", count: 10_000)
        let start = DispatchTime.now().uptimeNanoseconds
        XCTAssertFalse(GlobPattern("a*a*a*a*a*b").matches(text))
        XCTAssertFalse(GlobPattern("*a*a*a*a*a*a*a*a*a*a*a*a*b").matches(text))
        XCTAssertTrue(GlobPattern("a*a*a*a*a*a").matches(text))
        XCTAssertFalse(GlobPattern("*aaaaaaaaaaaaaaaaaaaab*").matches(text))
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        XCTAssertLessThan(elapsed, 500_000_000, "linear-ish, not exponential (debug build)")
    }

    func test_globAgainstAReferenceMatcher() {
        var rng = FastRandom(seed: 7)
        let alphabet: [Character] = ["a", "b", "/"]
        for _ in 0..<3000 {
            let pattern = String((0..<Int.random(in: 0...6, using: &rng)).map { _ in
                ["a", "b", "/", "*", "?"][Int.random(in: 0..<5, using: &rng)] as Character
            })
            let text = String((0..<Int.random(in: 0...8, using: &rng)).map { _ in alphabet[Int.random(in: 0..<3, using: &rng)] })
            XCTAssertEqual(GlobPattern(pattern).matches(text), Self.reference(Array(pattern.utf8)[...], Array(text.utf8)[...]),
                           "\(pattern) vs \(text)")
        }
    }

    /// Plain recursive glob (exponential, fine for short strings).
    static func reference(_ p: ArraySlice<UInt8>, _ t: ArraySlice<UInt8>) -> Bool {
        guard let c = p.first else { return t.isEmpty }
        if c == UInt8(ascii: "*") {
            return reference(p.dropFirst(), t) || (!t.isEmpty && reference(p, t.dropFirst()))
        }
        guard let b = t.first else { return false }
        return (c == UInt8(ascii: "?") || c == b) && reference(p.dropFirst(), t.dropFirst())
    }

    // MARK: DenyMatcher

    func headers(_ fields: [String: String]) -> (String) -> String? {
        { name in fields.first { $0.key.lowercased() == name.lowercased() }?.value }
    }

    func test_emptyMatcherDeniesNothing() {
        let m = DenyMatcher([])
        XCTAssertTrue(m.isEmpty)
        XCTAssertFalse(m.denies(method: "GET", path: "/", header: headers([:])))
    }

    func test_methodCondition() {
        let m = DenyMatcher([DenyRule(methods: ["DELETE", "put"])])
        XCTAssertFalse(m.isEmpty)
        XCTAssertTrue(m.denies(method: "DELETE", path: "/x", header: headers([:])))
        XCTAssertTrue(m.denies(method: "PUT", path: "/x", header: headers([:])), "rule methods are upper-cased")
        XCTAssertTrue(m.denies(method: "delete", path: "/x", header: headers([:])))
        XCTAssertFalse(m.denies(method: "GET", path: "/x", header: headers([:])))
        XCTAssertFalse(m.denies(method: "DELETES", path: "/x", header: headers([:])))
    }

    func test_pathCondition() {
        let m = DenyMatcher([DenyRule(path: "/admin/*")])
        XCTAssertTrue(m.denies(method: "GET", path: "/admin/panel", header: headers([:])))
        XCTAssertFalse(m.denies(method: "GET", path: "/Admin/panel", header: headers([:])), "paths are case-sensitive")
        XCTAssertFalse(m.denies(method: "GET", path: "/public", header: headers([:])))
    }

    func test_headerPresenceAndValue() {
        let present = DenyMatcher([DenyRule(header: "X-Debug")])
        XCTAssertTrue(present.denies(method: "GET", path: "/", header: headers(["x-debug": ""])))
        XCTAssertFalse(present.denies(method: "GET", path: "/", header: headers(["X-Other": "1"])))

        let valued = DenyMatcher([DenyRule(header: "User-Agent", value: "*sqlmap*")])
        XCTAssertTrue(valued.denies(method: "GET", path: "/", header: headers(["user-agent": "SQLMap/1.7"])),
                      "values match case-insensitively")
        XCTAssertFalse(valued.denies(method: "GET", path: "/", header: headers(["user-agent": "curl/8"])))
        XCTAssertFalse(valued.denies(method: "GET", path: "/", header: headers([:])))
    }

    func test_allConditionsOfARuleMustHold() {
        let m = DenyMatcher([DenyRule(methods: ["POST"], path: "/login*", header: "Origin", value: "https://evil.*")])
        XCTAssertTrue(m.denies(method: "POST", path: "/login", header: headers(["Origin": "https://EVIL.example"])))
        XCTAssertFalse(m.denies(method: "GET", path: "/login", header: headers(["Origin": "https://evil.example"])))
        XCTAssertFalse(m.denies(method: "POST", path: "/logout", header: headers(["Origin": "https://evil.example"])))
        XCTAssertFalse(m.denies(method: "POST", path: "/login", header: headers(["Origin": "https://good.example"])))
        XCTAssertFalse(m.denies(method: "POST", path: "/login", header: headers([:])))
    }

    func test_anyRuleDenies() {
        let m = DenyMatcher([DenyRule(methods: ["TRACE"]), DenyRule(path: "*.env")])
        XCTAssertTrue(m.denies(method: "TRACE", path: "/", header: headers([:])))
        XCTAssertTrue(m.denies(method: "GET", path: "/app/.env", header: headers([:])))
        XCTAssertFalse(m.denies(method: "GET", path: "/app/env", header: headers([:])))
    }

    func test_headerLookupUsesTheRuleName() {
        var asked: [String] = []
        let m = DenyMatcher([DenyRule(header: "X-Forwarded-Host", value: "internal*")])
        _ = m.denies(method: "GET", path: "/", header: { asked.append($0); return nil })
        XCTAssertEqual(asked, ["X-Forwarded-Host"])
    }
}
