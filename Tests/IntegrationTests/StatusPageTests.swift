import Foundation
import XCTest

/// Issue 8 on the real program: `lodestar up` (gossip on, edges as child processes) serves the status page on the DNS
/// admin listener; headless Chromium loads it (DOM dump and screenshots), an edge is killed and the page shows it dead,
/// the "what would you answer" box agrees with `dig +subnet=`, and no request the page makes leaves the admin listener.
final class StatusPageTests: XCTestCase {
    /// A running `lodestar up` and what the test needs of it.
    struct Up {
        let process: Process
        let folder: URL
        let dnsPort: UInt16
        let adminPort: UInt16
        let edgePids: [String: Int32]
        let output: () -> String
    }

    var ups: [Up] = []

    override func tearDown() {
        for up in ups {
            if up.process.isRunning { stopProcess(up.process, grace: 8) }
            for pid in up.edgePids.values where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
            try? FileManager.default.removeItem(at: up.folder)
        }
        ups = []
        super.tearDown()
    }

    /// The default topology with gossip on (300 ms probes), every port free, started with `lodestar up`.
    func startUp() throws -> Up {
        var topology = try IntegrationEnvironment.defaultTopology()
        let dnsPort = try FreePort.find(), adminPort = try FreePort.find(), edgePort = try FreePort.find()
        let originPort = try FreePort.find()
        try topology.edit("dns") {
            $0["listen"] = ["127.0.0.1:\(dnsPort)"]
            $0["admin"] = "127.0.0.1:\(adminPort)"
            $0["gossip"] = "127.0.0.1:\(try FreePort.find())"
        }
        var edges = topology["edges"] as? [[String: Any]] ?? []
        for i in edges.indices {
            let address = (edges[i]["addresses"] as? [String])?.first ?? "127.0.0.1"
            edges[i]["listen"] = ["\(address):\(edgePort)"]
            edges[i]["admin"] = "127.0.0.1:\(try FreePort.find())"
            edges[i]["gossip"] = "\(address):\(try FreePort.find())"
        }
        topology["edges"] = edges
        topology["gossip"] = ["keyEnvironment": "LODESTAR_TEST_PAGE_KEY", "probeIntervalMs": 300, "drainSeconds": 1]
        try topology.pointEveryPool(at: "127.0.0.1:\(originPort)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-page-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("topology.json").path
        try JSONSerialization.data(withJSONObject: topology).write(to: URL(fileURLWithPath: path))
        let logPath = folder.appendingPathComponent("up.log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let p = Process()
        p.executableURL = try IntegrationEnvironment.lodestarBinary()
        p.arguments = ["up", "--topology", path]
        p.standardOutput = log
        p.standardError = log
        try p.run()
        let output = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        // The table names each edge child's pid once all are listening.
        var pids: [String: Int32] = [:]
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline && pids.count < 3 {
            for line in output().split(separator: "\n") where line.hasPrefix("edge ") {
                let words = line.split(separator: " ")
                if let id = words.dropFirst().first, let pidIndex = words.firstIndex(of: "pid"), pidIndex + 1 < words.count,
                   let pid = Int32(words[pidIndex + 1]) {
                    pids[String(id)] = pid
                }
            }
            if !p.isRunning { break }
            usleep(100_000)
        }
        let up = Up(process: p, folder: folder, dnsPort: dnsPort, adminPort: adminPort, edgePids: pids, output: output)
        ups.append(up)
        guard pids.count == 3 else { throw IntegrationError("lodestar up did not list three edge children:\n\(output())") }
        return up
    }

    func status(_ up: Up) throws -> [String: Any] {
        let r = try EdgeHTTP.get(port: up.adminPort, "/status", host: "admin")
        guard r.status == 200, let j = r.json else { throw IntegrationError("bad /status: \(r)") }
        return j
    }

    func edgeState(_ up: Up, _ id: String) -> String? {
        let details = (try? status(up))?["edgeDetails"] as? [[String: Any]] ?? []
        return details.first { $0["id"] as? String == id }?["state"] as? String
    }

    func chromium() throws -> String {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            if let path = IntegrationEnvironment.which(name) { return path }
        }
        throw XCTSkip("Chromium is not installed (Debian: chromium)")
    }

    /// Headless Chromium on `url`: the DOM after scripts ran for `budgetMs` of virtual time, or a screenshot.
    func browse(_ url: String, size: (Int, Int) = (1280, 800), screenshot: String? = nil, budgetMs: Int = 2500,
                proxyPort: UInt16? = nil) throws -> String {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        var args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
                    "--disable-client-side-phishing-detection", "--no-default-browser-check", "--metrics-recording-only",
                    "--disable-features=NetworkTimeServiceQuerying,AutofillServerCommunication,OptimizationHints,MediaRouter",
                    "--user-data-dir=\(profile.path)", "--window-size=\(size.0),\(size.1)",
                    "--virtual-time-budget=\(budgetMs)"]
        if let proxyPort { args += ["--proxy-server=http://127.0.0.1:\(proxyPort)", "--proxy-bypass-list=<-loopback>"] }
        args += screenshot.map { ["--screenshot=\($0)", "--hide-scrollbars"] } ?? ["--dump-dom"]
        let r = try runCommand(try chromium(), args + [url], timeout: 60)
        XCTAssertFalse(r.timedOut, "chromium timed out on \(url)")
        return r.stdout
    }

    func test_pageShowsEveryRegionAndEdgeAndAKilledEdgeDies() throws {
        let up = try startUp()
        let page = "http://127.0.0.1:\(up.adminPort)/"
        // Every edge alive as gossip sees it.
        let start = Date()
        while Date().timeIntervalSince(start) < 15 {
            if ["edge-us-east", "edge-eu-central", "edge-ap-southeast"].allSatisfy({ edgeState(up, $0) == "alive" }) { break }
            usleep(100_000)
        }
        XCTAssertEqual(edgeState(up, "edge-eu-central"), "alive", up.output())

        // Without JavaScript the table is already there: the server renders it.
        let raw = try EdgeHTTP.get(port: up.adminPort, "/", host: "admin")
        XCTAssertEqual(raw.status, 200)
        XCTAssertTrue(raw.header("Content-Type")?.hasPrefix("text/html") ?? false)
        for edge in ["edge-us-east", "edge-eu-central", "edge-ap-southeast"] {
            XCTAssertTrue(raw.text.contains("id=\"edge-\(edge)\""), "server-rendered row of \(edge)")
        }

        let dom = try browse(page)
        for region in ["us-east", "eu-central", "ap-southeast"] {
            XCTAssertTrue(dom.contains("data-region=\"\(region)\""), "region \(region) on the map\n\(dom.prefix(3000))")
        }
        for name in ["US East (Ashburn)", "EU Central (Frankfurt)", "AP Southeast (Singapore)"] {
            XCTAssertTrue(dom.contains(name), "region name \(name)")
        }
        for edge in ["edge-us-east", "edge-eu-central", "edge-ap-southeast"] {
            XCTAssertTrue(dom.contains("id=\"edge-\(edge)\""), "table row of \(edge)")
            XCTAssertTrue(dom.contains("data-edge=\"\(edge)\""), "map marker of \(edge)")
        }
        XCTAssertTrue(dom.contains("class=\"edge state-alive\""), "edges drawn alive")
        XCTAssertTrue(dom.contains("id=\"member-dns-local-1\""), "the DNS node's own member row")
        XCTAssertFalse(dom.contains("banner-bad"), "the DNS node sees the cluster")
        XCTAssertTrue(dom.contains("data-refreshes=\"") && !dom.contains("data-refreshes=\"0\""),
                      "the script refreshed the table from /status at least once")

        // Some answers from three continents, for the map's lines.
        let dig = try IntegrationEnvironment.dig()
        for subnet in ["81.2.69.0/24", "8.8.8.0/24", "133.1.2.0/24", "177.0.0.0/24", "85.214.0.0/24"] {
            for _ in 0..<3 {
                _ = try runCommand(dig, ["@127.0.0.1", "-p", "\(up.dnsPort)", "+short", "+time=1", "+tries=1", "www.example.test",
                                         "+subnet=\(subnet)"], timeout: 5)
            }
        }

        // Kill the Frankfurt edge (SIGKILL, its child process): the page shows it dead within the failover target.
        let pid = try XCTUnwrap(up.edgePids["edge-eu-central"])
        XCTAssertEqual(kill(pid, SIGKILL), 0)
        let killed = Date()
        var deadAfter: TimeInterval?
        while Date().timeIntervalSince(killed) < 10 {
            if edgeState(up, "edge-eu-central") == "dead" {
                deadAfter = Date().timeIntervalSince(killed)
                break
            }
            usleep(20_000)
        }
        let statusDead = try XCTUnwrap(deadAfter, "the killed edge never showed dead in /status\n\(up.output().suffix(3000))")
        let after = try browse(page)
        let pageDead = Date().timeIntervalSince(killed)
        XCTAssertTrue(after.contains("id=\"edge-edge-eu-central\" data-edge=\"edge-eu-central\" class=\"state-dead\"")
                      || after.range(of: #"<tr[^>]*id="edge-edge-eu-central"[^>]*class="state-dead""#, options: .regularExpression) != nil,
                      "the table row shows the edge dead\n\(after.prefix(4000))")
        XCTAssertTrue(after.contains("class=\"edge state-dead\" data-edge=\"edge-eu-central\"")
                      || after.range(of: #"<circle[^>]*class="edge state-dead"[^>]*data-edge="edge-eu-central""#, options: .regularExpression) != nil,
                      "the map marker shows the edge dead")
        // The 2 s target is a distribution (SWIMSimulationTests: 4 members at 300 ms, p99 1.9 s); one sample on a loaded
        // machine gets half a second of slack.
        XCTAssertLessThanOrEqual(statusDead, 2.5, "failover target 2 s (300 ms probes), one sample")

        // Screenshots at both sizes, with the killed edge dead (kept when LODESTAR_SCREENSHOTS names a folder).
        let shots = ProcessInfo.processInfo.environment["LODESTAR_SCREENSHOTS"].map { URL(fileURLWithPath: $0) } ?? up.folder
        try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        for (name, size) in [("status-1280x800.png", (1280, 800)), ("status-390x844.png", (390, 844))] {
            let file = shots.appendingPathComponent(name).path
            _ = try browse(page, size: size, screenshot: file)
            let bytes = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int ?? 0
            XCTAssertGreaterThan(bytes, 10_000, "screenshot \(name)")
        }

        // With every edge gone the DNS node hears no one: the page says so plainly.
        for id in ["edge-us-east", "edge-ap-southeast"] { kill(try XCTUnwrap(up.edgePids[id]), SIGKILL) }
        let alone = Date()
        var blind: TimeInterval?
        while Date().timeIntervalSince(alone) < 15 {
            if ((try? status(up))?["cluster"] as? [String: Any])?["visible"] as? Bool == false {
                blind = Date().timeIntervalSince(alone)
                break
            }
            usleep(100_000)
        }
        XCTAssertNotNil(blind, "the DNS node never said it cannot see the cluster")
        let lonely = try browse(page, budgetMs: 500)
        XCTAssertTrue(lonely.contains("banner-bad") && lonely.contains("cannot see the cluster"),
                      "the banner says the DNS node cannot see the cluster\n\(lonely.prefix(3000))")
        print("PAGE-FIGURES all edges killed: the page said the DNS node cannot see the cluster after \(String(format: "%.1f", blind ?? -1)) s")
        print("PAGE-FIGURES kill -9 edge-eu-central: /status dead after \(String(format: "%.2f", statusDead)) s; "
              + "page DOM (a fresh Chromium load) showed dead \(String(format: "%.2f", pageDead)) s after the kill")
    }

    func test_whatWouldYouAnswerAgreesWithDigForFiveSubnetsOnThreeContinents() throws {
        let up = try startUp()
        let dig = try IntegrationEnvironment.dig()
        let subnets = ["81.2.69.0/24", "85.214.0.0/24", "8.8.8.0/24", "177.0.0.0/24", "133.1.2.0/24"]
        var continents = Set<String>()
        for subnet in subnets {
            let r = try runCommand(dig, ["@127.0.0.1", "-p", "\(up.dnsPort)", "+short", "+time=2", "+tries=1", "www.example.test",
                                         "+subnet=\(subnet)"], timeout: 10)
            let answer = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertFalse(answer.isEmpty, "dig +subnet=\(subnet)")
            let explained = try EdgeHTTP.get(port: up.adminPort, "/explain?client=\(subnet)", host: "admin")
            XCTAssertEqual(explained.status, 200, explained.text)
            let json = try XCTUnwrap(explained.json)
            let first = (json["answer"] as? [String])?.first ?? ""
            XCTAssertTrue(first.hasSuffix(" " + answer), "\(subnet): box says \(first), dig says \(answer)")
            if let c = (json["location"] as? [String: Any])?["continent"] as? String { continents.insert(c) }
            // The page's box (server-rendered: works without JavaScript) says the same.
            let encoded = subnet.replacingOccurrences(of: "/", with: "%2F")
            let dom = try browse("http://127.0.0.1:\(up.adminPort)/?client=\(encoded)", budgetMs: 500)
            let edge = String(first.split(separator: " ").first ?? "")
            let box = dom.range(of: #"<p id="explain-answer"[^>]*>[^<]*"#, options: .regularExpression).map { String(dom[$0]) } ?? ""
            XCTAssertTrue(box.contains(edge) && box.contains(answer), "\(subnet): the page's box shows \(box)")
            print("PAGE-FIGURES explain \(subnet): dig \(answer), box \(first)")
        }
        XCTAssertGreaterThanOrEqual(continents.count, 3, "subnets on three continents: \(continents)")
        let bad = try EdgeHTTP.get(port: up.adminPort, "/explain?client=not-an-address", host: "admin")
        XCTAssertEqual(bad.status, 400)
        XCTAssertNotNil(bad.json?["error"])
    }

    func test_noRequestOfThePageLeavesTheAdminListener() throws {
        let up = try startUp()
        let python = try EdgeTools.requirePython()
        let proxyPort = try FreePort.find()
        let proxyLog = up.folder.appendingPathComponent("proxy.log")
        _ = FileManager.default.createFile(atPath: proxyLog.path, contents: nil)
        let script = IntegrationEnvironment.packageRoot.appendingPathComponent("Tests/IntegrationTests/page_proxy.py").path
        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: python)
        proxy.arguments = [script, "\(proxyPort)", proxyLog.path]
        try proxy.run()
        defer { stopProcess(proxy, grace: 2) }
        usleep(500_000)
        let admin = "http://127.0.0.1:\(up.adminPort)"
        let dom = try browse(admin + "/?client=81.2.69.0%2F24", budgetMs: 4000, proxyPort: proxyPort)
        XCTAssertTrue(dom.contains("id=\"members\""), "the page loaded through the proxy\n\(dom.prefix(2000))")
        let requests = (try String(contentsOf: proxyLog, encoding: .utf8)).split(separator: "\n").map(String.init)
        XCTAssertFalse(requests.isEmpty, "the proxy saw the page's requests")
        XCTAssertTrue(requests.contains { $0.hasPrefix("GET \(admin)/status") }, "the script polls /status: \(requests)")
        // Chromium itself (not the page) still calls its vendor's services (accounts, component updates) whatever the
        // flags; those hosts are the browser's and are set aside. Anything else outside the admin listener fails.
        let browserOwn = ["google.com", "googleapis.com", "gvt1.com", "gstatic.com"]
        let outside = requests.filter { !$0.hasPrefix("GET \(admin)/") && !$0.hasPrefix("HEAD \(admin)/") }
        let browser = outside.filter { line in
            let host = line.split(separator: " ").dropFirst().first.flatMap { URL(string: String($0))?.host ?? String($0).split(separator: ":").first.map(String.init) } ?? ""
            return browserOwn.contains { host == $0 || host.hasSuffix("." + $0) }
        }
        let fromPage = outside.filter { !browser.contains($0) }
        XCTAssertEqual(fromPage, [], "requests that left the admin listener")
        let pageRequests = requests.filter { $0.hasPrefix("GET \(admin)/") || $0.hasPrefix("HEAD \(admin)/") }
        print("PAGE-FIGURES requests through the proxy: \(pageRequests.count) to the admin listener "
              + "(\(Set(pageRequests.map { String($0.split(separator: "?").first ?? "") }).sorted())), \(fromPage.count) elsewhere; "
              + "\(browser.count) of Chromium's own to its vendor's services set aside")

        // The admin listener stays on loopback by default.
        let shipped = try JSONSerialization.jsonObject(with: Data(contentsOf: IntegrationEnvironment.packageRoot
            .appendingPathComponent("topology.json"))) as? [String: Any]
        let dnsAdmin = (shipped?["dns"] as? [String: Any])?["admin"] as? String ?? ""
        XCTAssertTrue(dnsAdmin.hasPrefix("127.0.0.1:"), "the default topology's dns.admin is \(dnsAdmin)")
    }
}
