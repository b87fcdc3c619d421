import Foundation

/// The DNS admin listener's live status page (`GET /`): one self-contained HTML document (CSS, script and the SVG
/// world map inline; nothing is fetched from anywhere but this node's own `/status` and `/explain`). Everything is
/// rendered on the server, so the table and the "what would you answer" box work without JavaScript; the script
/// only refreshes them every second from `GET /status`.
public enum StatusPage {
    /// The whole page: self-contained HTML (CSS, script and SVG map inline; no external URL of any kind).
    public static func render(_ s: StatusSnapshot, explain: ExplainResult? = nil) -> String {
        render(s, explain: explain, assets: Assets.bundled)
    }

    /// HTML-escapes text for element content and attribute values (& < > " ').
    public static func escape(_ s: String) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(s.unicodeScalars.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// True when the bundled assets (css, js, map) were found.
    public static var assetsAvailable: Bool { Assets.bundled != nil }

    /// The page's colour classes, in legend order.
    static let states = ["alive", "suspect", "overloaded", "draining", "degraded", "dead", "unknown"]

    /// The same page with the given assets (nil: as when they are not installed).
    static func render(_ s: StatusSnapshot, explain: ExplainResult?, assets: Assets?) -> String {
        var h = ""
        h.reserveCapacity(16_384 + (assets.map { $0.css.utf8.count + $0.script.utf8.count + $0.mapPath.utf8.count } ?? 0))
        h += "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        h += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
            + "script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'self'\">\n"
        h += "<meta name=\"referrer\" content=\"no-referrer\">\n"
        h += "<title>Lodestar — \(escape(s.zone)) — \(escape(s.node))</title>\n"
        h += "<style>\n\(assets?.css ?? minimalCSS)</style>\n</head>\n<body>\n"
        header(s, into: &h)
        h += "<main>\n"
        h += "<section id=\"map-panel\" class=\"panel\" aria-label=\"Map\">\n"
        if let assets {
            map(s, path: assets.mapPath, into: &h)
            legend(into: &h)
        } else {
            h += "<p id=\"assets-missing\" class=\"muted\">status page assets not installed: no map and no live refresh "
                + "(reload the page to refresh).</p>\n"
        }
        h += "</section>\n"
        h += "<section id=\"table-panel\" class=\"panel\" aria-label=\"Members\">\n<h2>Members</h2>\n"
        table(s, into: &h)
        details(s, into: &h)
        h += "</section>\n"
        h += "<section id=\"explain-panel\" class=\"panel\" aria-label=\"What would you answer\">\n"
            + "<h2>What would you answer?</h2>\n"
        h += "<p class=\"hint\">The ranked candidates, the answer and the trace (as <code>CH TXT</code> gives them) for a client "
            + "address or subnet, from this node's current state.</p>\n"
        h += "<form id=\"explain\" method=\"get\" action=\"/\">\n"
        h += "<label for=\"client\">Client address or subnet</label>\n"
        h += "<input name=\"client\" id=\"client\" placeholder=\"203.0.113.7 or 81.2.69.0/24\""
            + " value=\"\(escape(explain?.query ?? ""))\" autocomplete=\"off\" spellcheck=\"false\">\n"
        h += "<button type=\"submit\">Explain</button>\n</form>\n"
        h += "<section id=\"explain-result\" aria-live=\"polite\">"
        if let explain { explainResult(explain, into: &h) }
        h += "</section>\n</section>\n</main>\n"
        if let assets { h += "<script>\n\(assets.script)</script>\n" }
        h += "</body>\n</html>\n"
        return h
    }

    // MARK: - Parts

    /// Zone, node, configuration and the cluster banner.
    static func header(_ s: StatusSnapshot, into h: inout String) {
        h += "<header>\n<h1>Lodestar <span class=\"sep\">·</span> <span id=\"zone\">\(escape(s.zone))</span> "
            + "<span class=\"sep\">·</span> <span id=\"node\">\(escape(s.node))</span></h1>\n"
        h += "<p class=\"meta\">config <b id=\"config-version\">\(escape(s.config.version))</b>"
            + " · serial <b id=\"config-serial\">\(s.config.serial)</b>"
            + " · loaded <span id=\"config-loaded\">\(escape(s.config.loadedAt))</span>"
            + " · generated <span id=\"generated-at\">\(escape(s.generatedAt))</span></p>\n"
        let (text, bad) = bannerText(s.cluster)
        h += "<div id=\"cluster-note\" class=\"banner banner-\(bad ? "bad" : "info")\" role=\"status\""
            + (text.isEmpty ? " hidden" : "") + ">\(escape(text))</div>\n</header>\n"
    }

    /// The banner's text and whether it is bad news (the script computes the same).
    static func bannerText(_ c: StatusSnapshot.Cluster) -> (String, Bool) {
        let bad = c.gossip && !c.visible
        var text = c.note
        if text.isEmpty && bad { text = "This DNS node cannot see the cluster: it has heard no other gossip member recently." }
        return (text, bad)
    }

    /// The SVG map: coastline, decision flows, regions and edges.
    static func map(_ s: StatusSnapshot, path: String, into h: inout String) {
        h += "<svg id=\"map\" viewBox=\"0 0 360 180\" role=\"img\" aria-label=\"World map of regions and edges\">\n"
        h += "<rect class=\"sea\" width=\"360\" height=\"180\" fill=\"none\"/>\n"
        h += "<path class=\"land\" d=\"\(path)\"/>\n"
        var points: [String: (Double, Double)] = [:]
        for r in s.regions {
            if let p = point(latitude: r.latitude, longitude: r.longitude), points[r.id] == nil { points[r.id] = p }
        }
        let edgeRegion = Dictionary(s.edgeDetails.map { ($0.id, $0.region) }, uniquingKeysWith: { a, _ in a })
        // decision flows: client area → the answered edge's region
        let flows = s.decisions.compactMap { d -> (StatusSnapshot.Decision, (Double, Double), (Double, Double))? in
            guard let lat = d.latitude, let lon = d.longitude, let from = point(latitude: lat, longitude: lon),
                  let to = points[d.region] ?? edgeRegion[d.edge].flatMap({ points[$0] }) else { return nil }
            return (d, from, to)
        }
        let most = flows.map { max(0, $0.0.answers) }.max() ?? 0
        h += "<g id=\"flows\">\n"
        for (d, from, to) in flows {
            let n = max(0, d.answers)
            let width = most > 0 ? 0.3 + 2.2 * log1p(Double(n)) / log1p(Double(most)) : 0.3
            h += "<line class=\"flow\" data-edge=\"\(escape(d.edge))\" data-country=\"\(escape(d.country))\""
                + " x1=\"\(f2(from.0))\" y1=\"\(f2(from.1))\" x2=\"\(f2(to.0))\" y2=\"\(f2(to.1))\""
                + " stroke-width=\"\(f2(min(2.5, max(0.3, width))))\">"
                + "<title>\(escape(d.country)) → \(escape(d.edge)): \(d.answers) answers</title></line>\n"
            h += "<circle class=\"client\" cx=\"\(f2(from.0))\" cy=\"\(f2(from.1))\" r=\"0.7\"/>\n"
        }
        // each region's edges on a ring around its point, the first at the top, so that they do not overlap
        var ring: [String: [String]] = [:]
        for e in s.edgeDetails { ring[e.region, default: []].append(e.id) }
        func radius(_ region: String) -> Double { max(5.2, Double(ring[region]?.count ?? 0) * 5.6 / (2 * Double.pi)) }
        h += "</g>\n<g id=\"regions\">\n"
        var placed = Set<String>()
        for r in s.regions where placed.insert(r.id).inserted {
            guard let p = points[r.id] else { continue }
            let label = r.name.isEmpty ? r.id : r.name
            h += "<g class=\"region\" data-region=\"\(escape(r.id))\"><title>\(escape(label)) (\(escape(r.id)))</title>"
                + "<circle class=\"region-dot\" cx=\"\(f2(p.0))\" cy=\"\(f2(p.1))\" r=\"1.5\"/>"
                + "<text x=\"\(f2(p.0))\" y=\"\(f2(min(178, p.1 + radius(r.id) + 6.5)))\">\(escape(label))</text></g>\n"
        }
        h += "</g>\n<g id=\"edges\">\n"
        for e in s.edgeDetails {
            guard let p = points[e.region], let group = ring[e.region], let i = group.firstIndex(of: e.id) else { continue }
            let angle = -Double.pi / 2 + 2 * Double.pi * Double(i) / Double(group.count)
            let r = radius(e.region)
            h += "<circle class=\"edge state-\(safeID(e.state))\" data-edge=\"\(escape(e.id))\""
                + " cx=\"\(f2(p.0 + r * cos(angle)))\" cy=\"\(f2(p.1 + r * sin(angle)))\" r=\"2.6\">"
                + "<title>\(escape(edgeTitle(e)))</title></circle>\n"
        }
        h += "</g>\n</svg>\n"
    }

    /// The state colours and map symbols, explained.
    static func legend(into h: inout String) {
        h += "<ul class=\"legend\" aria-label=\"Legend\">"
        for st in states { h += "<li class=\"state-\(st)\"><span class=\"swatch\"></span>\(st)</li>" }
        h += "<li class=\"region-key\"><span class=\"swatch\"></span>region</li>"
        h += "<li class=\"flow-key\"><span class=\"swatch\"></span>answers to clients</li></ul>\n"
    }

    /// An edge circle's tooltip: "ID — state, load N % of capacity C, cache hit ratio H %, origins healthy O %".
    static func edgeTitle(_ e: StatusSnapshot.EdgeDetail) -> String {
        var parts = [e.state]
        if let load = e.load, load.isFinite {
            parts.append("load \(pct(load))" + (e.capacity.map { " of capacity \($0)" } ?? ""))
        } else if let c = e.capacity {
            parts.append("capacity \(c)")
        }
        if let r = e.cacheHitRatio, r.isFinite { parts.append("cache hit ratio \(pct(r))") }
        if let o = e.healthyOrigins, o.isFinite { parts.append("origins healthy \(pct(o))") }
        return "\(e.id) — " + parts.joined(separator: ", ")
    }

    /// The members table: one row per edge, then one per DNS gossip member.
    static func table(_ s: StatusSnapshot, into h: inout String) {
        h += "<div class=\"table-wrap\">\n<table id=\"members\" data-refreshes=\"0\">\n<thead><tr><th scope=\"col\">Member</th><th scope=\"col\" class=\"role\">Role</th>"
            + "<th scope=\"col\" class=\"region\">Region</th><th scope=\"col\">State</th><th scope=\"col\">Last heard</th><th scope=\"col\">Load</th>"
            + "<th scope=\"col\">Capacity</th><th scope=\"col\">Origin health</th><th scope=\"col\">Answers/s</th></tr></thead>\n"
        h += "<tbody id=\"edge-rows\">\n"
        for e in s.edgeDetails {
            h += "<tr id=\"edge-\(safeID(e.id))\" data-edge=\"\(escape(e.id))\" class=\"state-\(safeID(e.state))\">"
            row(member: e.id, role: "edge", region: e.region, state: e.state, why: e.why, heardMs: e.lastHeardMs,
                load: e.load.map(pct) ?? dash, capacity: e.capacity.map { "\($0)" } ?? dash,
                origins: e.healthyOrigins.map(pct) ?? dash, rate: f1(e.answersPerSecond), into: &h)
            h += "</tr>\n"
        }
        h += "</tbody>\n<tbody id=\"member-rows\">\n"
        for m in s.gossip?.members ?? [] where m.role == "dns" {
            h += "<tr id=\"member-\(safeID(m.id))\" data-member=\"\(escape(m.id))\" class=\"state-\(safeID(m.status))\">"
            row(member: m.id, role: m.role, region: dash, state: m.status, why: [], heardMs: m.lastHeardMs, load: dash,
                capacity: dash, origins: dash, rate: dash, into: &h)
            h += "</tr>\n"
        }
        h += "</tbody>\n</table>\n</div>\n"
    }

    /// One row's cells (text not yet escaped); the script builds the same cells.
    static func row(member: String, role: String, region: String, state: String, why: [String], heardMs: Int?, load: String,
                    capacity: String, origins: String, rate: String, into h: inout String) {
        h += "<td class=\"member\">\(escape(member))</td><td class=\"role\">\(escape(role))</td>"
            + "<td class=\"region\">\(escape(region))</td><td class=\"state\"><span class=\"badge\">\(escape(state))</span>"
        if !why.isEmpty {
            h += "<ul class=\"why\">"
            for w in why { h += "<li>\(escape(w))</li>" }
            h += "</ul>"
        }
        h += "</td><td class=\"heard\">\(heardMs.map(heard) ?? dash)</td><td class=\"load\">\(escape(load))</td>"
            + "<td class=\"capacity\">\(escape(capacity))</td><td class=\"origins\">\(escape(origins))</td>"
            + "<td class=\"rate\">\(escape(rate))</td>"
    }

    /// Drains, top decisions, query counters and the last reload, under the table.
    static func details(_ s: StatusSnapshot, into h: inout String) {
        h += "<div id=\"details\">\n"
        if !s.drains.isEmpty || !s.operatorDown.isEmpty {
            h += "<div id=\"drains\">\n<h3>Operator drains</h3>\n<ul>"
            for d in s.drains {
                h += "<li><b>\(escape(d.target))</b> — \(escape(d.reason)) <span class=\"muted\">(since \(escape(d.since))\(d.setBy.isEmpty ? "" : ", set on \(escape(d.setBy))"))</span></li>"
            }
            for id in s.operatorDown { h += "<li><b>\(escape(id))</b> — marked down</li>" }
            h += "</ul>\n</div>\n"
        }
        h += "<div id=\"decisions\">\n<h3>Top decisions (last 5–10 minutes)</h3>\n"
        if s.decisions.isEmpty {
            h += "<p class=\"muted\">No answers yet.</p>\n"
        } else {
            h += "<ol>"
            for d in s.decisions.prefix(10) {
                h += "<li>\(escape(d.country)) <span class=\"muted\">(\(escape(d.continent)))</span> → <b>\(escape(d.edge))</b>"
                    + " <span class=\"muted\">(\(escape(d.region)))</span>: \(d.answers) answers</li>"
            }
            h += "</ol>\n"
        }
        h += "</div>\n<div id=\"counters\">\n<h3>Queries</h3>\n"
        h += "<p id=\"queries\">UDP <span id=\"queries-udp\">\(s.queries.udp)</span>"
            + " · TCP <span id=\"queries-tcp\">\(s.queries.tcp)</span></p>\n"
        if let g = s.gossip {
            let dropped = g.dropped.sorted { $0.key < $1.key }.map { "\(escape($0.key)) \($0.value)" }
            h += "<p id=\"gossip-packets\">Gossip packets: in \(g.packetsIn), out \(g.packetsOut)"
                + (dropped.isEmpty ? "" : ", dropped: " + dropped.joined(separator: ", ")) + "</p>\n"
        }
        if let r = s.config.lastReload {
            if r.ok {
                h += "<p id=\"last-reload\" class=\"reload-ok\">Last reload \(escape(r.at)): ok</p>\n"
            } else {
                h += "<p id=\"last-reload\" class=\"reload-error\">Last reload \(escape(r.at)): error: "
                    + "\(escape(r.error ?? "unknown"))</p>\n"
            }
        } else {
            h += "<p id=\"last-reload\" class=\"muted\">No reload since start.</p>\n"
        }
        h += "</div>\n</div>\n"
    }

    /// The "what would you answer" result (the script renders the same structure).
    static func explainResult(_ x: ExplainResult, into h: inout String) {
        h += "<h3>For <code class=\"query\">\(escape(x.query))</code></h3>"
        if let error = x.error {
            h += "<p class=\"error\">\(escape(error))</p>"
        } else {
            h += "<p class=\"location\">\(escape(locationLine(x)))</p>"
            if x.candidates.isEmpty {
                h += "<p class=\"muted\">No candidate edge.</p>"
            } else {
                h += "<div class=\"table-wrap\"><table class=\"candidates\"><thead><tr><th>#</th><th>Edge</th><th>Region</th>"
                    + "<th>km</th><th>Health</th><th>Chosen</th></tr></thead><tbody>"
                for (i, c) in x.candidates.enumerated() {
                    h += "<tr\(c.chosen ? " class=\"chosen\"" : "")><td>\(i + 1)</td><td>\(escape(c.edge))</td>"
                        + "<td>\(escape(c.region))</td><td>\(c.distanceKm)</td><td>\(escape(c.health))</td>"
                        + "<td class=\"mark\">\(c.chosen ? "✓ chosen" : "")</td></tr>"
                }
                h += "</tbody></table></div>"
            }
            h += "<p id=\"explain-answer\">\(escape(answerLine(x)))</p>"
        }
        if !x.trace.isEmpty { h += "<pre class=\"trace\">\(escape(x.trace.joined(separator: "\n")))</pre>" }
    }

    /// "client 203.0.113.0 (GeoIP network /24) · service www · Frankfurt, DE, EU — 50.11, 8.68 · placement".
    static func locationLine(_ x: ExplainResult) -> String {
        var parts: [String] = []
        if let c = x.client { parts.append("client \(c)" + (x.geoPrefixLength.map { " (GeoIP network /\($0))" } ?? "")) }
        if let s = x.service { parts.append("service \(s)") }
        if let l = x.location {
            let place = [l.city, l.country, l.continent].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ", ")
            parts.append((place.isEmpty ? "" : place + " — ") + "\(f2(l.latitude)), \(f2(l.longitude))")
        } else {
            parts.append("location unknown")
        }
        if let p = x.placement, !p.isEmpty { parts.append(p) }
        return parts.joined(separator: " · ")
    }

    /// "Answer: edge-a 192.0.2.1, … · TTL 30 s · ECS scope /24".
    static func answerLine(_ x: ExplainResult) -> String {
        "Answer: " + (x.answer.isEmpty ? "none" : x.answer.joined(separator: ", "))
            + (x.ttlSeconds.map { " · TTL \($0) s" } ?? "") + (x.scopePrefixLength.map { " · ECS scope /\($0)" } ?? "")
    }

    // MARK: - Formatting (never locale-dependent)

    static let dash = "—"

    /// A map point (x = lon+180, y = 90-lat), nil for coordinates that are not numbers.
    static func point(latitude: Double, longitude: Double) -> (Double, Double)? {
        guard latitude.isFinite, longitude.isFinite else { return nil }
        return (min(360, max(0, longitude + 180)), min(180, max(0, 90 - latitude)))
    }

    /// An id made safe for an element id or class: every UTF-16 unit outside [A-Za-z0-9_-] becomes `_` (as the script does).
    static func safeID(_ s: String) -> String {
        String(decoding: s.utf16.map { u -> UInt16 in
            switch u {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F, 0x2D: return u
            default: return 0x5F
            }
        }, as: UTF16.self)
    }

    /// A ratio (0...1) as "42 %".
    static func pct(_ v: Double) -> String { v.isFinite ? String(format: "%.0f %%", v * 100) : dash }
    /// One decimal.
    static func f1(_ v: Double) -> String { v.isFinite ? String(format: "%.1f", v) : dash }
    /// Two decimals (map coordinates).
    static func f2(_ v: Double) -> String { String(format: "%.2f", v) }
    /// Milliseconds since last heard as "0.3 s ago".
    static func heard(_ ms: Int) -> String { String(format: "%.1f s ago", Double(ms) / 1000) }

    /// Just enough style for the table and the form when the assets are not installed.
    static let minimalCSS = """
        body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;padding:12px;max-width:1200px;background:#fff;color:#1d2330}
        .banner{padding:8px 12px;margin:8px 0;border-left:5px solid #d62828;background:#fde9e9;font-weight:600}
        .banner.banner-info{border-color:#2f6fdf;background:#e9f1fe;font-weight:400}.banner[hidden]{display:none}
        .table-wrap{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:14px}
        th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #dde1e8;vertical-align:top}
        h1{font-size:1.3rem}h2{font-size:1.05rem}td{white-space:nowrap}td.state{white-space:normal;min-width:12em}
        ul.why{margin:2px 0;padding-left:16px;font-size:13px}tr.chosen td{font-weight:600}.muted{color:#5d6677}
        .error,.reload-error{color:#a11b1b}pre.trace{overflow-x:auto}

        """
}

/// The page's bundled assets: the stylesheet, the script and the map's path data (escaped for an attribute).
struct Assets: Sendable {
    var css: String
    var script: String
    var mapPath: String

    /// Read once, at first use; nil when they are not installed.
    static let bundled: Assets? = load()

    /// Reads the assets from the target's resource bundle.
    static func load() -> Assets? {
        guard let dir = resourceDirectory() else { return nil }
        func read(_ name: String) -> String? {
            guard let text = try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8), !text.isEmpty
            else { return nil }
            return text
        }
        guard let css = read("status.css"), let script = read("status.js"), let path = read("world-110m.path"),
              !css.lowercased().contains("</style"), !script.lowercased().contains("</script") else { return nil }
        return Assets(css: css, script: script, mapPath: StatusPage.escape(path.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// The `Resources` folder of the resource bundle. The generated `Bundle.module` stops the process when its bundle
    /// is missing (a binary installed without its `.resources` folder next to it), so it is used only once the bundle
    /// is known to be where it looks first; otherwise a few other likely places are tried before giving up.
    static func resourceDirectory() -> URL? {
        #if canImport(Darwin)
        let name = "Lodestar_LodestarStatusPage.bundle"
        #else
        let name = "Lodestar_LodestarStatusPage.resources"
        #endif
        let fm = FileManager.default
        let bundle: Bundle?
        if fm.fileExists(atPath: Bundle.main.bundleURL.appendingPathComponent(name).path) {
            bundle = Bundle.module
        } else {
            let places = [Bundle.main.resourceURL, Bundle(for: BundleToken.self).bundleURL.deletingLastPathComponent(),
                          Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent()]
            bundle = places.lazy.compactMap { $0.flatMap { Bundle(url: $0.appendingPathComponent(name)) } }.first
        }
        guard let bundle else { return nil }
        if let css = bundle.url(forResource: "status", withExtension: "css", subdirectory: "Resources") {
            return css.deletingLastPathComponent()
        }
        for base in [bundle.resourceURL, bundle.bundleURL] {
            guard let dir = base?.appendingPathComponent("Resources") else { continue }
            if fm.fileExists(atPath: dir.appendingPathComponent("status.css").path) { return dir }
        }
        return nil
    }
}

/// Finds the bundle this module was loaded from.
private final class BundleToken {}
