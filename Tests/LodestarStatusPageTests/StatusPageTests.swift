import Foundation
@testable import LodestarStatusPage
import XCTest

/// The status page renderer: structure, escaping, self-containment and the script's rules.
final class StatusPageTests: XCTestCase {
    static let hostile = "<script>alert(1)</script>\"'&"
    static let hostileEscaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"

    /// Three regions, three edges (alive, dead, draining), one DNS member, decisions with coordinates, a drain and a
    /// failed reload.
    func snapshot(cluster: StatusSnapshot.Cluster = .init(gossip: true, visible: true, note: "")) -> StatusSnapshot {
        StatusSnapshot(
            node: "dns-1", zone: "cdn.example.", serial: 2024112501, generatedAt: "2024-11-25T20:00:00Z",
            config: .init(version: "cfg-7f3a", serial: 2024112501, loadedAt: "2024-11-25T19:00:00Z",
                          lastReload: .init(at: "2024-11-25T19:30:00Z", ok: false, error: "topology.json: region missing")),
            cluster: cluster,
            regions: [
                .init(id: "us-east", name: "US East", latitude: 39.0, longitude: -77.5),
                .init(id: "eu-central", name: "EU Central", latitude: 50.1, longitude: 8.7),
                .init(id: "ap-southeast", name: "Singapore", latitude: 1.35, longitude: 103.8),
            ],
            edges: ["edge-use-1": "up", "edge-euc-1": "down", "edge-aps-1": "up"],
            edgeDetails: [
                .init(id: "edge-use-1", region: "us-east", health: "up", state: "alive", answers: 1200, answersPerSecond: 12.34,
                      lastHeardMs: 300, requestsPerSecond: 420, capacity: 1000, load: 0.42, cacheHitRatio: 0.87,
                      healthyOrigins: 1, connections: 17),
                .init(id: "edge-euc-1", region: "eu-central", health: "down", state: "dead",
                      why: ["gossip: member is dead", "operator: maintenance"], answers: 5),
                .init(id: "edge-aps-1", region: "ap-southeast", health: "up", state: "draining",
                      why: ["gossip: the edge reports it is draining"], answers: 40, answersPerSecond: 0.5, lastHeardMs: 1500,
                      requestsPerSecond: 10, capacity: 500, load: 0.02, cacheHitRatio: 0.5, healthyOrigins: 0.5),
            ],
            operatorDown: [],
            drains: [.init(target: "edge:edge-aps-1", reason: "kernel upgrade", since: "2024-11-25T19:45:00Z")],
            decisions: [
                .init(country: "DE", continent: "EU", latitude: 51.3, longitude: 9.5, edge: "edge-euc-1", region: "eu-central",
                      answers: 900),
                .init(country: "US", continent: "NA", latitude: 37.75, longitude: -97.8, edge: "edge-use-1", region: "us-east",
                      answers: 2500),
                .init(country: "SG", continent: "AS", latitude: 1.3, longitude: 103.8, edge: "edge-aps-1", region: "ap-southeast",
                      answers: 3),
                .init(country: "ZZ", continent: "--", latitude: nil, longitude: nil, edge: "edge-use-1", region: "us-east",
                      answers: 7),
            ],
            queries: .init(udp: 12345, tcp: 67),
            gossip: .init(members: [
                .init(id: "dns-1", role: "dns", status: "alive", incarnation: 3, lastHeardMs: 0),
                .init(id: "edge-use-1", role: "edge", status: "alive", incarnation: 1, lastHeardMs: 300),
            ], packetsIn: 100, packetsOut: 120, dropped: ["auth": 2]))
    }

    /// A ranked explain result with one chosen candidate.
    func explainResult(query: String = "81.2.69.0/24") -> ExplainResult {
        ExplainResult(query: query, client: "81.2.69.0", service: "www", geoPrefixLength: 24,
                      location: .init(latitude: 51.5, longitude: -0.13, country: "GB", continent: "EU", city: "London"),
                      placement: "GeoIP city", candidates: [
                          .init(edge: "edge-euc-1", region: "eu-central", distanceKm: 640, health: "up", chosen: true),
                          .init(edge: "edge-use-1", region: "us-east", distanceKm: 5900, health: "up", chosen: false),
                      ], answer: ["edge-euc-1 192.0.2.10"], ttlSeconds: 30, scopePrefixLength: 24,
                      trace: ["client 81.2.69.0/24 → GB EU", "chose edge-euc-1 (640 km)"])
    }

    func testAssetsAreBundled() {
        XCTAssertTrue(StatusPage.assetsAvailable)
    }

    func testDocumentHead() {
        let page = StatusPage.render(snapshot())
        XCTAssertTrue(page.hasPrefix("<!doctype html>"))
        XCTAssertTrue(page.contains("<meta charset=\"utf-8\">"))
        XCTAssertTrue(page.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"))
        XCTAssertTrue(page.contains("<title>Lodestar — cdn.example. — dns-1</title>"))
        XCTAssertTrue(page.contains("Content-Security-Policy"))
        XCTAssertTrue(page.contains("<style>"))
        XCTAssertTrue(page.contains("<script>"))
        XCTAssertTrue(page.contains("cfg-7f3a"))
        XCTAssertTrue(page.contains("2024112501"))
        XCTAssertTrue(page.contains("2024-11-25T20:00:00Z"))
    }

    func testEveryRegionAndEdgeIsOnTheMapAndInTheTable() {
        let page = StatusPage.render(snapshot())
        XCTAssertTrue(page.contains("<svg id=\"map\" viewBox=\"0 0 360 180\" role=\"img\" aria-label=\"World map of regions and edges\">"))
        XCTAssertTrue(page.contains("<path class=\"land\" d=\"M"))
        for r in ["us-east", "eu-central", "ap-southeast"] {
            XCTAssertTrue(page.contains("<g class=\"region\" data-region=\"\(r)\">"), r)
        }
        for name in ["US East", "EU Central", "Singapore"] { XCTAssertTrue(page.contains(">\(name)</text>"), name) }
        // us-east at (102.5, 51): the region dot, its only edge just above it
        XCTAssertTrue(page.contains("cx=\"102.50\" cy=\"51.00\""))
        XCTAssertTrue(page.contains("<circle class=\"edge state-alive\" data-edge=\"edge-use-1\""))
        XCTAssertTrue(page.contains("<circle class=\"edge state-dead\" data-edge=\"edge-euc-1\""))
        XCTAssertTrue(page.contains("<circle class=\"edge state-draining\" data-edge=\"edge-aps-1\""))
        XCTAssertTrue(page.contains(
            "<title>edge-use-1 — alive, load 42 % of capacity 1000, cache hit ratio 87 %, origins healthy 100 %</title>"))
        XCTAssertTrue(page.contains("<title>edge-euc-1 — dead</title>"))
        // flows for the decisions with coordinates only; the biggest is the widest
        XCTAssertTrue(page.contains("<line class=\"flow\" data-edge=\"edge-euc-1\" data-country=\"DE\""))
        XCTAssertTrue(page.contains("<line class=\"flow\" data-edge=\"edge-use-1\" data-country=\"US\""))
        XCTAssertFalse(page.contains("data-country=\"ZZ\""))
        XCTAssertTrue(page.contains("stroke-width=\"2.50\"><title>US → edge-use-1: 2500 answers</title>"))
        XCTAssertTrue(page.contains("<ul class=\"legend\""))

        XCTAssertTrue(page.contains("<table id=\"members\" data-refreshes=\"0\">"))
        for column in ["Member", "Role", "Region", "State", "Last heard", "Load", "Capacity", "Origin health", "Answers/s"] {
            XCTAssertTrue(page.contains(">\(column)</th>"), column)
        }
        XCTAssertTrue(page.contains("<tr id=\"edge-edge-use-1\" data-edge=\"edge-use-1\" class=\"state-alive\">"))
        XCTAssertTrue(page.contains("<tr id=\"edge-edge-euc-1\" data-edge=\"edge-euc-1\" class=\"state-dead\">"))
        XCTAssertTrue(page.contains("<tr id=\"edge-edge-aps-1\" data-edge=\"edge-aps-1\" class=\"state-draining\">"))
        XCTAssertTrue(page.contains("<td class=\"state\"><span class=\"badge\">dead</span><ul class=\"why\">"
            + "<li>gossip: member is dead</li><li>operator: maintenance</li></ul></td>"))
        XCTAssertTrue(page.contains("<td class=\"heard\">0.3 s ago</td><td class=\"load\">42 %</td>"
            + "<td class=\"capacity\">1000</td><td class=\"origins\">100 %</td><td class=\"rate\">12.3</td>"))
        XCTAssertTrue(page.contains("<td class=\"heard\">—</td><td class=\"load\">—</td><td class=\"capacity\">—</td>"
            + "<td class=\"origins\">—</td><td class=\"rate\">0.0</td>"))
        XCTAssertTrue(page.contains("<tr id=\"member-dns-1\" data-member=\"dns-1\" class=\"state-alive\">"))
        XCTAssertTrue(page.contains("<td class=\"role\">dns</td><td class=\"region\">—</td>"))
        XCTAssertFalse(page.contains("id=\"member-edge-use-1\""), "edges are listed once, as edges")
        XCTAssertTrue(page.contains("<div class=\"table-wrap\">"))

        XCTAssertTrue(page.contains("kernel upgrade"))
        XCTAssertTrue(page.contains("<span id=\"queries-udp\">12345</span>"))
        XCTAssertTrue(page.contains("<p id=\"last-reload\" class=\"reload-error\">"))
        XCTAssertTrue(page.contains("topology.json: region missing"))
        XCTAssertTrue(page.contains("<form id=\"explain\" method=\"get\" action=\"/\">"))
        XCTAssertTrue(page.contains("<input name=\"client\" id=\"client\" placeholder=\"203.0.113.7 or 81.2.69.0/24\" value=\"\""))
        XCTAssertTrue(page.contains("<section id=\"explain-result\" aria-live=\"polite\"></section>"))
    }

    func testHostileTextIsEscapedEverywhere() {
        let bad = Self.hostile
        var s = snapshot(cluster: .init(gossip: true, visible: false, note: bad))
        s.node = bad
        s.zone = bad
        s.generatedAt = bad
        s.config.version = bad
        s.config.lastReload?.error = bad
        s.regions.append(.init(id: bad, name: bad, latitude: 10, longitude: 10))
        s.edgeDetails.append(.init(id: bad, region: bad, health: bad, state: bad, why: [bad], lastHeardMs: 5))
        s.drains.append(.init(target: bad, reason: bad, since: bad))
        s.operatorDown.append(bad)
        s.decisions.append(.init(country: bad, continent: bad, latitude: 10, longitude: 10, edge: bad, region: bad, answers: 1))
        s.gossip?.members.append(.init(id: bad, role: "dns", status: bad, incarnation: 1))
        s.gossip?.dropped[bad] = 1
        var x = explainResult(query: bad)
        x.placement = bad
        x.candidates.append(.init(edge: bad, region: bad, distanceKm: 1, health: bad, chosen: true))
        x.answer.append(bad)
        x.trace.append(bad)
        for page in [StatusPage.render(s, explain: x), StatusPage.render(s, explain: ExplainResult(query: bad, error: bad)),
                     StatusPage.render(s, explain: x, assets: nil)] {
            XCTAssertFalse(page.contains(bad))
            XCTAssertFalse(page.contains("<script>alert"))
            XCTAssertFalse(page.contains("'&"))
            XCTAssertTrue(page.contains(Self.hostileEscaped))
            XCTAssertTrue(page.contains("value=\"\(Self.hostileEscaped)\""))
            XCTAssertTrue(page.contains("data-edge=\"\(Self.hostileEscaped)\""))
            XCTAssertTrue(page.contains("id=\"edge-_script_alert_1___script____\""))
            XCTAssertTrue(page.contains("class=\"state-_script_alert_1___script____\""))
            XCTAssertTrue(page.contains("id=\"member-_script_alert_1___script____\""))
        }
    }

    func testEscape() {
        XCTAssertEqual(StatusPage.escape(Self.hostile), Self.hostileEscaped)
        XCTAssertEqual(StatusPage.escape("plain — text 42"), "plain — text 42")
        XCTAssertEqual(StatusPage.escape(""), "")
        XCTAssertEqual(StatusPage.safeID("edge-1_a.b/c é"), "edge-1_a_b_c__")
    }

    func testSelfContained() throws {
        let page = StatusPage.render(snapshot(), explain: explainResult())
        for needle in ["<link", "<img src=", "<script src=", "<iframe", "@import", "url("] {
            XCTAssertFalse(page.lowercased().contains(needle), needle)
        }
        let attribute = try NSRegularExpression(pattern: "\\b(src|href|action|xlink:href)\\s*=\\s*\"([^\"]*)\"", options: [.caseInsensitive])
        let matches = attribute.matches(in: page, range: NSRange(page.startIndex..., in: page))
        XCTAssertFalse(matches.isEmpty, "the form's action at least")
        for m in matches {
            let value = (page as NSString).substring(with: m.range(at: 2))
            XCTAssertTrue(value.hasPrefix("/") && !value.hasPrefix("//"), "external URL: \(value)")
            XCTAssertFalse(value.contains("://"), "external URL: \(value)")
        }
        XCTAssertFalse(page.contains("http://"))
        XCTAssertFalse(page.contains("https://"))
        XCTAssertLessThan(page.utf8.count, 200_000)
    }

    func testExplainResultIsRendered() {
        let page = StatusPage.render(snapshot(), explain: explainResult())
        XCTAssertTrue(page.contains("<section id=\"explain-result\" aria-live=\"polite\"><h3>"))
        XCTAssertTrue(page.contains("value=\"81.2.69.0/24\""))
        XCTAssertTrue(page.contains("<div class=\"table-wrap\"><table class=\"candidates\">"))
        XCTAssertTrue(page.contains("<tr class=\"chosen\"><td>1</td><td>edge-euc-1</td><td>eu-central</td><td>640</td><td>up</td>"
            + "<td class=\"mark\">✓ chosen</td></tr>"))
        XCTAssertTrue(page.contains("<tr><td>2</td><td>edge-use-1</td>"))
        XCTAssertTrue(page.contains("London, GB, EU — 51.50, -0.13"))
        XCTAssertTrue(page.contains("<p id=\"explain-answer\">Answer: edge-euc-1 192.0.2.10 · TTL 30 s · ECS scope /24</p>"))
        XCTAssertTrue(page.contains("<pre class=\"trace\">client 81.2.69.0/24 → GB EU\nchose edge-euc-1 (640 km)</pre>"))

        let refused = StatusPage.render(snapshot(), explain: ExplainResult(query: "nope", error: "not an IP address or subnet"))
        XCTAssertTrue(refused.contains("<p class=\"error\">not an IP address or subnet</p>"))
        XCTAssertFalse(refused.contains("<table class=\"candidates\">"))
    }

    func testClusterBanner() {
        let note = "This DNS node has not heard from any other gossip member: it cannot see the cluster."
        let blind = StatusPage.render(snapshot(cluster: .init(gossip: true, visible: false, note: note)))
        XCTAssertTrue(blind.contains("<div id=\"cluster-note\" class=\"banner banner-bad\" role=\"status\">\(note)</div>"))

        let fine = StatusPage.render(snapshot())
        XCTAssertTrue(fine.contains("<div id=\"cluster-note\" class=\"banner banner-info\" role=\"status\" hidden></div>"))
        // a page (style and script included) that sees the cluster never says banner-bad
        XCTAssertFalse(fine.contains("banner-bad"))
        XCTAssertFalse(StatusPage.render(snapshot(), explain: explainResult(), assets: nil).contains("banner-bad"))

        let off = StatusPage.render(snapshot(cluster: .init(gossip: false, visible: false, note: "Gossip is off.")))
        XCTAssertTrue(off.contains("<div id=\"cluster-note\" class=\"banner banner-info\" role=\"status\">Gossip is off.</div>"))

        // blind without a note still says so
        let silent = StatusPage.render(snapshot(cluster: .init(gossip: true, visible: false, note: "")))
        XCTAssertTrue(silent.contains("class=\"banner banner-bad\" role=\"status\">This DNS node cannot see the cluster"))
    }

    func testWithoutAssets() {
        let page = StatusPage.render(snapshot(), explain: explainResult(), assets: nil)
        XCTAssertTrue(page.contains("status page assets not installed"))
        XCTAssertFalse(page.contains("<svg"))
        XCTAssertFalse(page.contains("<script"))
        XCTAssertTrue(page.contains("<style>"))
        XCTAssertTrue(page.contains("<table id=\"members\" data-refreshes=\"0\">"))
        XCTAssertTrue(page.contains("<tr id=\"edge-edge-euc-1\" data-edge=\"edge-euc-1\" class=\"state-dead\">"))
        XCTAssertTrue(page.contains("<form id=\"explain\" method=\"get\" action=\"/\">"))
        XCTAssertTrue(page.contains("<table class=\"candidates\">"))
    }

    func testNumbersIgnoreTheLocale() {
        var s = snapshot()
        s.edgeDetails[0].answersPerSecond = 1234.56
        s.edgeDetails[1].load = .nan
        s.regions.append(.init(id: "nowhere", name: "Nowhere", latitude: .nan, longitude: .infinity))
        let page = StatusPage.render(s)
        XCTAssertTrue(page.contains("<td class=\"rate\">1234.6</td>"))
        XCTAssertFalse(page.contains("1234,6"))
        XCTAssertFalse(page.contains("nan\""))
        XCTAssertFalse(page.contains(">nan"))
        XCTAssertFalse(page.contains("data-region=\"nowhere\""))
    }

    func testSnapshotRoundTripsAsJSON() throws {
        let s = snapshot()
        XCTAssertEqual(try JSONDecoder().decode(StatusSnapshot.self, from: JSONEncoder().encode(s)), s)
        let x = explainResult()
        XCTAssertEqual(try JSONDecoder().decode(ExplainResult.self, from: JSONEncoder().encode(x)), x)
    }

    func testScriptRules() throws {
        let script = try XCTUnwrap(Assets.bundled?.script)
        XCTAssertLessThan(script.split(separator: "\n", omittingEmptySubsequences: false).count, 300)
        for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
            XCTAssertFalse(script.contains(banned), banned)
        }
        XCTAssertFalse(script.contains("://"))
        let fetch = try NSRegularExpression(pattern: "fetch\\(\\s*'([^']*)'")
        let urls = fetch.matches(in: script, range: NSRange(script.startIndex..., in: script)).map {
            (script as NSString).substring(with: $0.range(at: 1))
        }
        XCTAssertEqual(Set(urls), ["/status", "/explain?client="])
        XCTAssertEqual(script.components(separatedBy: "fetch(").count - 1, urls.count, "every fetch names a literal relative URL")
        XCTAssertTrue(script.contains("cache: 'no-store'"))
        XCTAssertTrue(script.contains("history.replaceState"))
        XCTAssertTrue(script.contains("data-refreshes"))
        XCTAssertTrue(script.contains("The status page cannot reach this DNS node's admin API (last good update "))
        // the field names the script reads exist in the model's JSON
        let json = try XCTUnwrap(String(data: JSONEncoder().encode(snapshot()), encoding: .utf8))
        for field in ["edgeDetails", "lastHeardMs", "answersPerSecond", "healthyOrigins", "cacheHitRatio", "generatedAt",
                      "loadedAt", "members", "cluster", "visible", "note"] {
            XCTAssertTrue(json.contains("\"\(field)\""), field)
            XCTAssertTrue(script.contains(field), field)
        }
        let css = try XCTUnwrap(Assets.bundled?.css)
        XCTAssertTrue(css.contains(".table-wrap"))
        XCTAssertTrue(css.contains("overflow-x: auto"))
        XCTAssertFalse(css.contains("url("))
    }

    /// `node --check` on the script, when node is installed.
    func testScriptParses() throws {
        let candidates = ["/usr/bin/node", "/usr/local/bin/node", "/opt/homebrew/bin/node"]
        guard let node = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("node is not installed")
        }
        let script = try XCTUnwrap(Assets.bundled?.script)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-status-\(UUID().uuidString).js")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: node)
        process.arguments = ["--check", file.path]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        let message = String(data: errors.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8) ?? ""
        XCTAssertEqual(process.terminationStatus, 0, message)
    }
}
