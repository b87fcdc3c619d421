#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Parsing of the edge sections: per-edge listeners, `origins`, `routes`, `proxy`.
extension TopologyParser {
    /// `ADDRESS:PORT` text.
    func listenAddress(_ node: JSONNode) -> ListenAddress? {
        guard let s = node.string() else { return nil }
        guard let a = ListenAddress(s) else {
            node.fail("\"\(s)\" is not ADDRESS:PORT or [ADDRESS]:PORT")
            return nil
        }
        return a
    }

    /// A listener: `"127.0.1.1:8080"` or `{"address": …, "tls": {…}, "proxyProtocol": true, "protocols": [...]}`.
    func parseListener(_ node: JSONNode) -> EdgeListener? {
        if case .string? = node.value { return listenAddress(node).map { EdgeListener(address: $0) } }
        guard let f = node.object(allowed: ["address", "tls", "proxyProtocol", "protocols"]) else { return nil }
        let address = required(f, "address", in: node).flatMap(listenAddress)
        let tls = f["tls"].flatMap(parseTLS)
        let proxy = f["proxyProtocol"].map { $0.bool() } ?? false
        guard let address, let proxy, f["tls"] == nil || tls != nil else { return nil }
        var protocols: [ListenerProtocol]?
        if let pn = f["protocols"] {
            guard let parsed = parseProtocols(pn, tls: tls != nil) else { return nil }
            protocols = parsed
        }
        return EdgeListener(address: address, tls: tls, proxyProtocol: proxy, protocols: protocols)
    }

    /// `listen[].protocols`: `h2` needs TLS (ALPN), `h2c` needs a plain listener; at least one, no repeats.
    func parseProtocols(_ node: JSONNode, tls: Bool) -> [ListenerProtocol]? {
        guard let list = node.array() else { return nil }
        var out = [ListenerProtocol]()
        var ok = true
        for item in list {
            guard let raw = item.string() else { ok = false; continue }
            guard let p = ListenerProtocol(rawValue: raw) else {
                item.fail("\"\(raw)\" is not one of \(ListenerProtocol.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
                ok = false
                continue
            }
            if p == .h2 && !tls { item.fail("\"h2\" is offered by ALPN and needs \"tls\"; a plain listener takes \"h2c\""); ok = false }
            if p == .h2c && tls { item.fail("\"h2c\" is HTTP/2 without TLS; a TLS listener takes \"h2\""); ok = false }
            if out.contains(p) { item.fail("\"\(raw)\" is listed twice"); ok = false }
            out.append(p)
        }
        if list.isEmpty { node.fail("a listener needs at least one protocol"); ok = false }
        return ok ? out : nil
    }

    func parseTLS(_ node: JSONNode) -> TLSSettings? {
        guard let f = node.object(allowed: ["certificates", "minVersion"]) else { return nil }
        var certs = [TLSCertificate]()
        if let cn = required(f, "certificates", in: node), let list = cn.array() {
            if list.isEmpty { cn.fail("TLS needs at least one certificate") }
            for item in list {
                guard let cf = item.object(allowed: ["cert", "key", "serverNames"]) else { continue }
                let cert = required(cf, "cert", in: item).flatMap { $0.string() }
                let key = required(cf, "key", in: item).flatMap { $0.string() }
                var names = [String]()
                if let nn = cf["serverNames"], let nl = nn.array() {
                    for n in nl {
                        guard let raw = n.string() else { continue }
                        if raw.hasPrefix("*.") {
                            if let rest = checkedName(String(raw.dropFirst(2)), node: n) { names.append("*." + rest) }
                        } else if let name = checkedName(raw, node: n) {
                            names.append(name)
                        }
                    }
                }
                if let cert, let key { certs.append(TLSCertificate(certificatePath: cert, keyPath: key, serverNames: names)) }
            }
        }
        var minimum: TLSMinimumVersion? = .tls12
        if let vn = f["minVersion"], let v = vn.string() {
            minimum = TLSMinimumVersion(rawValue: v)
            if minimum == nil { vn.fail("\"\(v)\" is not one of 1.2, 1.3 (older TLS is not offered)") }
        } else if f["minVersion"] != nil {
            minimum = nil
        }
        guard let minimum, !certs.isEmpty else { return nil }
        return TLSSettings(certificates: certs, minimumVersion: minimum)
    }

    /// Checks listeners across edges: no address bound twice.
    func checkListeners(_ edges: [Edge], node: JSONNode) {
        var seen = [ListenAddress: String]()
        for e in edges {
            for l in e.listen + (e.admin.map { [EdgeListener(address: $0)] } ?? []) {
                if let other = seen[l.address] {
                    node.sink.add(path: node.path, reason: "\(l.address) is used by both \(other) and \(e.id)")
                }
                seen[l.address] = e.id
            }
        }
    }

    // MARK: Origins

    func parseOrigins(_ node: JSONNode) -> [OriginPool] {
        guard let items = node.map() else { return [] }
        var out = [OriginPool]()
        for (name, item) in items {
            guard identifier(JSONNode(value: .string(name), path: item.path, sink: sink)) != nil else { continue }
            guard let f = item.object(allowed: ["servers", "balance", "connectTimeoutMs", "responseTimeoutMs", "idleTimeoutMs",
                                                "maxIdlePerServer", "retries", "healthCheck", "passive", "protocol", "tls",
                                                "resolveIntervalMs", "resolveFamily"]) else { continue }
            var servers = [OriginServer]()
            if let sn = required(f, "servers", in: item), let list = sn.array() {
                if list.isEmpty { sn.fail("a pool needs at least one server") }
                servers = list.compactMap(parseOriginServer)
                var seen = Set<OriginTarget>()
                for s in servers where !seen.insert(s.target).inserted { sn.fail("server \(s.target) listed twice") }
            }
            let interval = f["resolveIntervalMs"].flatMap { $0.int(in: 100...86_400_000) }
            var family: AddressFamilyPreference? = .ipv4Preferred
            if let fn = f["resolveFamily"], let text = fn.string() {
                family = AddressFamilyPreference(rawValue: text)
                if family == nil {
                    fn.fail("\"\(text)\" is not one of \(AddressFamilyPreference.allCases.map(\.rawValue).joined(separator: ", "))")
                }
            } else if f["resolveFamily"] != nil { family = nil }
            var balance: BalancePolicy? = .roundRobin
            if let bn = f["balance"], let b = bn.string() {
                balance = BalancePolicy(rawValue: b)
                if balance == nil { bn.fail("\"\(b)\" is not one of \(BalancePolicy.allCases.map(\.rawValue).joined(separator: ", "))") }
            } else if f["balance"] != nil {
                balance = nil
            }
            let d = OriginPool(name: name, servers: [])
            let connect = f["connectTimeoutMs"].map { $0.int(in: 10...60_000) } ?? d.connectTimeoutMs
            let response = f["responseTimeoutMs"].map { $0.int(in: 10...3_600_000) } ?? d.responseTimeoutMs
            let idle = f["idleTimeoutMs"].map { $0.int(in: 100...3_600_000) } ?? d.idleTimeoutMs
            let maxIdle = f["maxIdlePerServer"].map { $0.int(in: 0...10_000) } ?? d.maxIdlePerServer
            let retries = f["retries"].map { $0.int(in: 0...10) } ?? d.retries
            let check = f["healthCheck"].flatMap(parseHealthCheck)
            let passive = f["passive"].map(parsePassive) ?? PassiveHealthSettings()
            var proto: OriginProtocol? = .http1
            if let pn = f["protocol"], let p = pn.string() {
                proto = OriginProtocol(rawValue: p)
                if proto == nil { pn.fail("\"\(p)\" is not one of \(OriginProtocol.allCases.map(\.rawValue).joined(separator: ", "))") }
            } else if f["protocol"] != nil { proto = nil }
            let tls = f["tls"].flatMap(parseOriginTLS)
            if proto == .h2 && f["tls"] == nil { item.fail("\"protocol\": \"h2\" is HTTP/2 over TLS and needs \"tls\" (h2c is the cleartext one)") }
            if proto == .h2c && f["tls"] != nil { item.fail("\"protocol\": \"h2c\" is cleartext; with \"tls\" use \"h2\"") }
            guard let balance, let connect, let response, let idle, let maxIdle, let retries, let passive, let proto, !servers.isEmpty,
                  f["healthCheck"] == nil || check != nil, f["tls"] == nil || tls != nil, let family,
                  f["resolveIntervalMs"] == nil || interval != nil else { continue }
            out.append(OriginPool(name: name, servers: servers, balance: balance, connectTimeoutMs: connect,
                                  responseTimeoutMs: response, idleTimeoutMs: idle, maxIdlePerServer: maxIdle, retries: retries,
                                  healthCheck: check, passive: passive, protocol: proto, tls: tls,
                                  resolveIntervalMs: interval, resolveFamily: family))
        }
        return out
    }

    /// `origins.NAME.tls`: `{"caFile", "serverName", "clientCertificate", "clientKey"}` (all optional; `{}` means the
    /// system's CAs and no client certificate).
    func parseOriginTLS(_ node: JSONNode) -> OriginTLS? {
        guard let f = node.object(allowed: ["caFile", "serverName", "clientCertificate", "clientKey"]) else { return nil }
        let ca = f["caFile"].flatMap { $0.string() }
        var name: String?
        if let nn = f["serverName"], let n = nn.string() { name = checkedName(n, node: nn) }
        let cert = f["clientCertificate"].flatMap { $0.string() }
        let key = f["clientKey"].flatMap { $0.string() }
        if (cert == nil) != (key == nil) { node.fail("\"clientCertificate\" and \"clientKey\" go together") ; return nil }
        if f["serverName"] != nil && name == nil { return nil }
        return OriginTLS(caFile: ca, serverName: name, clientCertificate: cert, clientKey: key)
    }

    func parseHealthCheck(_ node: JSONNode) -> HealthCheckSettings? {
        guard let f = node.object(allowed: ["path", "host", "intervalMs", "timeoutMs", "rise", "fall"]) else { return nil }
        let d = HealthCheckSettings()
        var path: String? = d.path
        if let pn = f["path"], let p = pn.string() {
            path = p
            if !p.hasPrefix("/") || p.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) {
                pn.fail("\"\(p)\" is not an absolute path without spaces"); path = nil
            }
        } else if f["path"] != nil { path = nil }
        let host = f["host"].flatMap { $0.string() }
        let interval = f["intervalMs"].map { $0.int(in: 100...3_600_000) } ?? d.intervalMs
        let timeout = f["timeoutMs"].map { $0.int(in: 10...60_000) } ?? d.timeoutMs
        let rise = f["rise"].map { $0.int(in: 1...100) } ?? d.rise
        let fall = f["fall"].map { $0.int(in: 1...100) } ?? d.fall
        guard let path, let interval, let timeout, let rise, let fall else { return nil }
        return HealthCheckSettings(path: path, host: host, intervalMs: interval, timeoutMs: timeout, rise: rise, fall: fall)
    }

    func parsePassive(_ node: JSONNode) -> PassiveHealthSettings? {
        guard let f = node.object(allowed: ["failures", "ejectMs", "maxEjectedPercent"]) else { return nil }
        let d = PassiveHealthSettings()
        let failures = f["failures"].map { $0.int(in: 0...1000) } ?? d.failures
        let eject = f["ejectMs"].map { $0.int(in: 100...3_600_000) } ?? d.ejectMs
        let pct = f["maxEjectedPercent"].map { $0.int(in: 0...100) } ?? d.maxEjectedPercent
        guard let failures, let eject, let pct else { return nil }
        return PassiveHealthSettings(failures: failures, ejectMs: eject, maxEjectedPercent: pct)
    }

    // MARK: Routes

    func parseRoutes(_ node: JSONNode, pools: [OriginPool]) -> [Route] {
        guard let list = node.array() else { return [] }
        let poolNames = Set(pools.map(\.name))
        var out = [Route]()
        for item in list {
            guard let f = item.object(allowed: ["hosts", "pathPrefix", "pool", "requestHeaders", "responseHeaders", "deny",
                                                "exposeOriginServer", "cache", "upgrade"]) else { continue }
            var hosts = [String]()
            if let hn = required(f, "hosts", in: item), let hl = hn.array() {
                if hl.isEmpty { hn.fail("a route needs at least one host (\"*\" for any)") }
                for h in hl {
                    guard let raw = h.string() else { continue }
                    if raw == "*" { hosts.append("*") }
                    else if raw.hasPrefix("*.") {
                        if let rest = checkedName(String(raw.dropFirst(2)), node: h) { hosts.append("*." + rest) }
                    } else if let name = checkedName(raw, node: h) { hosts.append(name) }
                }
            }
            var prefix: String? = "/"
            if let pn = f["pathPrefix"], let p = pn.string() {
                prefix = p
                if !p.hasPrefix("/") { pn.fail("a path prefix starts with \"/\""); prefix = nil }
            } else if f["pathPrefix"] != nil { prefix = nil }
            var pool: String?
            if let pn = required(f, "pool", in: item), let p = pn.string() {
                if poolNames.contains(p) { pool = p } else { pn.fail("unknown origin pool \"\(p)\"") }
            }
            let reqRules = f["requestHeaders"].map(parseHeaderRules) ?? HeaderRules()
            let respRules = f["responseHeaders"].map(parseHeaderRules) ?? HeaderRules()
            var deny = [DenyRule]()
            if let dn = f["deny"], let dl = dn.array() {
                for d in dl { if let r = parseDeny(d) { deny.append(r) } }
            }
            let expose = f["exposeOriginServer"].map { $0.bool() } ?? false
            let cache = f["cache"].map(parseRouteCache) ?? RouteCacheSettings()
            var upgrade: [String]? = ["websocket"]
            if let un = f["upgrade"] {
                upgrade = un.array().map { items in
                    items.compactMap { item -> String? in
                        guard let t = item.string() else { return nil }
                        if !isToken(t) { item.fail("\"\(t)\" is not a protocol token"); return nil }
                        return t.lowercased()
                    }
                }
            }
            guard let prefix, let pool, let reqRules, let respRules, let expose, let cache, let upgrade, !hosts.isEmpty else { continue }
            out.append(Route(hosts: hosts, pathPrefix: prefix, pool: pool, requestHeaders: reqRules, responseHeaders: respRules,
                             deny: deny, exposeOriginServer: expose, cache: cache, upgrade: upgrade))
        }
        return out
    }

    /// `routes[].cache`: `{"enabled": true, "graceSeconds": 60}`; an object without `enabled` turns the cache on.
    func parseRouteCache(_ node: JSONNode) -> RouteCacheSettings? {
        guard let f = node.object(allowed: ["enabled", "graceSeconds"]) else { return nil }
        let enabled = f["enabled"].map { $0.bool() } ?? true
        let grace = f["graceSeconds"].map { $0.int(in: 0...31_536_000) } ?? 0
        guard let enabled, let grace else { return nil }
        return RouteCacheSettings(enabled: enabled, graceSeconds: grace)
    }

    /// True for an RFC 9110 token (header field name).
    func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { b in
            isalnum(Int32(b)) != 0 || "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }

    func parseHeaderRules(_ node: JSONNode) -> HeaderRules? {
        guard let f = node.object(allowed: ["set", "remove"]) else { return nil }
        var set = [HeaderField]()
        if let sn = f["set"], let items = sn.map() {
            for (name, v) in items {
                guard let value = v.string() else { continue }
                if !isToken(name) { v.fail("\"\(name)\" is not a header name") ; continue }
                if value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) { v.fail("a header value may not hold CR, LF or NUL"); continue }
                set.append(HeaderField(name: name, value: value))
            }
        }
        var remove = [String]()
        if let rn = f["remove"], let list = rn.array() {
            for r in list {
                guard let name = r.string() else { continue }
                if isToken(name) { remove.append(name) } else { r.fail("\"\(name)\" is not a header name") }
            }
        }
        return HeaderRules(set: set, remove: remove)
    }

    func parseDeny(_ node: JSONNode) -> DenyRule? {
        guard let f = node.object(allowed: ["methods", "path", "header", "value"]) else { return nil }
        var methods = [String]()
        if let mn = f["methods"], let ml = mn.array() {
            for m in ml {
                guard let s = m.string() else { continue }
                if isToken(s) { methods.append(s.uppercased()) } else { m.fail("\"\(s)\" is not a method") }
            }
        }
        let path = f["path"].flatMap { $0.string() }
        var header: String?
        if let hn = f["header"], let h = hn.string() {
            if isToken(h) { header = h } else { hn.fail("\"\(h)\" is not a header name") }
        }
        let value = f["value"].flatMap { $0.string() }
        if value != nil && header == nil && f["header"] == nil { node.fail("\"value\" needs \"header\"") }
        if methods.isEmpty && path == nil && header == nil { node.fail("a deny rule needs methods, path or header") ; return nil }
        return DenyRule(methods: methods, path: path, header: header, value: value)
    }

    // MARK: Proxy settings

    func parseProxy(_ node: JSONNode) -> ProxySettings? {
        guard let f = node.object(allowed: ["threads", "limits", "rateLimit", "compression", "requestIdHeader", "accessLog",
                                            "cache", "http2", "tunnels", "resolver", "passThrough"]) else { return nil }
        let d = ProxySettings()
        let threads = f["threads"].map { $0.int(in: 0...256) } ?? d.threads
        let limits = f["limits"].map(parseLimits) ?? d.limits
        let rate = f["rateLimit"].map(parseRequestRate) ?? d.rateLimit
        let comp = f["compression"].map(parseCompression) ?? d.compression
        var rid: String? = d.requestIdHeader
        if let rn = f["requestIdHeader"], let r = rn.string() {
            rid = r
            if !isToken(r) { rn.fail("\"\(r)\" is not a header name"); rid = nil }
        } else if f["requestIdHeader"] != nil { rid = nil }
        let log = f["accessLog"].map { $0.bool() } ?? d.accessLog
        let cache = f["cache"].map(parseCache) ?? d.cache
        let http2 = f["http2"].map(parseHTTP2) ?? d.http2
        let tunnels = f["tunnels"].map(parseTunnels) ?? d.tunnels
        let resolver = f["resolver"].map(parseResolver) ?? d.resolver
        let passThrough = f["passThrough"].map { $0.bool() } ?? d.passThrough
        guard let threads, let limits, let rate, let comp, let rid, let log, let cache, let http2, let tunnels,
              let resolver, let passThrough else { return nil }
        return ProxySettings(threads: threads, limits: limits, rateLimit: rate, compression: comp, requestIdHeader: rid,
                             accessLog: log, cache: cache, http2: http2, tunnels: tunnels, resolver: resolver,
                             passThrough: passThrough)
    }

    /// `proxy.http2`: limits of HTTP/2 client connections (RFC 9113 §6.5.2 settings and flood bounds).
    func parseHTTP2(_ node: JSONNode) -> HTTP2Limits? {
        guard let f = node.object(allowed: ["maxConcurrentStreams", "maxHeaderListBytes", "initialWindowBytes",
                                            "connectionWindowBytes", "maxFrameBytes", "idleTimeoutMs", "gracefulShutdownMs",
                                            "maxResetsPerWindow", "maxControlFramesPerWindow", "floodWindowMs",
                                            "maxContinuationFrames"]) else { return nil }
        let d = HTTP2Limits()
        let streams = f["maxConcurrentStreams"].map { $0.int(in: 1...10_000) } ?? d.maxConcurrentStreams
        let headers = f["maxHeaderListBytes"].map { $0.int(in: 1024...1_048_576) } ?? d.maxHeaderListBytes
        // RFC 9113 §6.5.2: windows up to 2^31-1, frames 2^14...2^24-1.
        let window = f["initialWindowBytes"].map { $0.int(in: 65_535...2_147_483_647) } ?? d.initialWindowBytes
        let connWindow = f["connectionWindowBytes"].map { $0.int(in: 65_535...2_147_483_647) } ?? d.connectionWindowBytes
        let frame = f["maxFrameBytes"].map { $0.int(in: 16_384...16_777_215) } ?? d.maxFrameBytes
        let idle = f["idleTimeoutMs"].map { $0.int(in: 100...3_600_000) } ?? d.idleTimeoutMs
        let grace = f["gracefulShutdownMs"].map { $0.int(in: 0...600_000) } ?? d.gracefulShutdownMs
        let resets = f["maxResetsPerWindow"].map { $0.int(in: 1...1_000_000) } ?? d.maxResetsPerWindow
        let control = f["maxControlFramesPerWindow"].map { $0.int(in: 1...1_000_000) } ?? d.maxControlFramesPerWindow
        let window2 = f["floodWindowMs"].map { $0.int(in: 100...3_600_000) } ?? d.floodWindowMs
        let cont = f["maxContinuationFrames"].map { $0.int(in: 0...1000) } ?? d.maxContinuationFrames
        guard let streams, let headers, let window, let connWindow, let frame, let idle, let grace, let resets, let control,
              let window2, let cont else { return nil }
        return HTTP2Limits(maxConcurrentStreams: streams, maxHeaderListBytes: headers, initialWindowBytes: window,
                           connectionWindowBytes: connWindow, maxFrameBytes: frame, idleTimeoutMs: idle, gracefulShutdownMs: grace,
                           maxResetsPerWindow: resets, maxControlFramesPerWindow: control, floodWindowMs: window2,
                           maxContinuationFrames: cont)
    }

    /// `proxy.tunnels`: the cap on open upgraded connections and their idle timeout.
    func parseTunnels(_ node: JSONNode) -> TunnelLimits? {
        guard let f = node.object(allowed: ["maxOpen", "idleTimeoutMs"]) else { return nil }
        let d = TunnelLimits()
        let maxOpen = f["maxOpen"].map { $0.int(in: 0...1_000_000) } ?? d.maxOpen
        let idle = f["idleTimeoutMs"].map { $0.int(in: 100...86_400_000) } ?? d.idleTimeoutMs
        guard let maxOpen, let idle else { return nil }
        return TunnelLimits(maxOpen: maxOpen, idleTimeoutMs: idle)
    }

    /// `proxy.cache`: the memory tier's bounds, the coalescing wait and the optional disk tier.
    func parseCache(_ node: JSONNode) -> CacheSettings? {
        guard let f = node.object(allowed: ["memoryBytes", "maxObjectBytes", "lockTimeoutMs", "disk"]) else { return nil }
        let d = CacheSettings()
        let memory = f["memoryBytes"].map { $0.int(in: 0...(1 << 40)) } ?? d.memoryBytes
        let maxObject = f["maxObjectBytes"].map { $0.int(in: 0...(1 << 40)) } ?? d.maxObjectBytes
        let lock = f["lockTimeoutMs"].map { $0.int(in: 0...600_000) } ?? d.lockTimeoutMs
        var diskPath: String?
        var diskBytes: Int? = d.diskBytes
        if let dn = f["disk"] {
            if let df = dn.object(allowed: ["path", "maxBytes"]) {
                if let pn = required(df, "path", in: dn), let p = pn.string() {
                    if p.isEmpty { pn.fail("the disk cache needs a directory") } else { diskPath = p }
                }
                diskBytes = df["maxBytes"].map { $0.int(in: 0...(1 << 50)) } ?? d.diskBytes
            }
            if diskPath == nil { return nil }
        }
        guard let memory, let maxObject, let lock, let diskBytes else { return nil }
        return CacheSettings(memoryBytes: memory, maxObjectBytes: maxObject, lockTimeoutMs: lock, diskPath: diskPath,
                             diskBytes: diskBytes)
    }

    func parseLimits(_ node: JSONNode) -> ProxyLimits? {
        guard let f = node.object(allowed: ["maxRequestLineBytes", "maxHeaderBytes", "maxHeaderCount", "maxBodyBytes",
                                            "headerTimeoutMs", "keepAliveTimeoutMs", "bodyTimeoutMs", "sendTimeoutMs",
                                            "maxConnections"]) else { return nil }
        let d = ProxyLimits()
        let line = f["maxRequestLineBytes"].map { $0.int(in: 256...1_048_576) } ?? d.maxRequestLineBytes
        let hb = f["maxHeaderBytes"].map { $0.int(in: 1024...1_048_576) } ?? d.maxHeaderBytes
        let hc = f["maxHeaderCount"].map { $0.int(in: 8...10_000) } ?? d.maxHeaderCount
        let body = f["maxBodyBytes"].map { $0.int(in: 0...(1 << 50)).map(Int64.init) } ?? d.maxBodyBytes
        let ht = f["headerTimeoutMs"].map { $0.int(in: 100...600_000) } ?? d.headerTimeoutMs
        let ka = f["keepAliveTimeoutMs"].map { $0.int(in: 100...3_600_000) } ?? d.keepAliveTimeoutMs
        let bt = f["bodyTimeoutMs"].map { $0.int(in: 100...3_600_000) } ?? d.bodyTimeoutMs
        let st = f["sendTimeoutMs"].map { $0.int(in: 100...3_600_000) } ?? d.sendTimeoutMs
        let mc = f["maxConnections"].map { $0.int(in: 1...1_000_000) } ?? d.maxConnections
        guard let line, let hb, let hc, let body, let ht, let ka, let bt, let st, let mc else { return nil }
        return ProxyLimits(maxRequestLineBytes: line, maxHeaderBytes: hb, maxHeaderCount: hc, maxBodyBytes: body,
                           headerTimeoutMs: ht, keepAliveTimeoutMs: ka, bodyTimeoutMs: bt, sendTimeoutMs: st,
                           maxConnections: mc)
    }

    func parseRequestRate(_ node: JSONNode) -> RequestRateLimitSettings? {
        guard let f = node.object(allowed: ["enabled", "requestsPerSecond", "burst"]) else { return nil }
        let d = RequestRateLimitSettings()
        let enabled = f["enabled"].map { $0.bool() } ?? true
        let rps = f["requestsPerSecond"].map { $0.int(in: 1...10_000_000) } ?? d.requestsPerSecond
        let burst = f["burst"].map { $0.int(in: 1...10_000_000) } ?? d.burst
        guard let enabled, let rps, let burst else { return nil }
        return RequestRateLimitSettings(enabled: enabled, requestsPerSecond: rps, burst: burst)
    }

    func parseCompression(_ node: JSONNode) -> CompressionSettings? {
        guard let f = node.object(allowed: ["enabled", "level", "minBytes", "types"]) else { return nil }
        let d = CompressionSettings()
        let enabled = f["enabled"].map { $0.bool() } ?? d.enabled
        let level = f["level"].map { $0.int(in: 1...9) } ?? d.level
        let minBytes = f["minBytes"].map { $0.int(in: 0...(1 << 30)) } ?? d.minBytes
        var types: [String]? = d.types
        if let tn = f["types"], let tl = tn.array() {
            types = tl.compactMap { $0.string()?.lowercased() }
        } else if f["types"] != nil { types = nil }
        guard let enabled, let level, let minBytes, let types else { return nil }
        return CompressionSettings(enabled: enabled, level: level, minBytes: minBytes, types: types)
    }
}
