import LodestarTopology

/// Header fields as admission reads them (a concrete array: admission is specialized code, not generic over the
/// adapter's header type).
public typealias AdmissionFields = [(name: String, value: String)]

/// The request facts admission reads (the request head as any client protocol gave it).
public struct AdmissionRequest {
    public var method: String
    /// Origin-form target (`/path?query`); an absolute-form target is split by the adapter first.
    public var target: String
    public var isHTTP10: Bool
    /// An HTTP/2 stream: `Host` comes from `:authority`, upgrades do not exist (RFC 9113 §8.6).
    public var isHTTP2: Bool
    public var fields: AdmissionFields
    public var fieldCount: Int
    public var client: IPAddress?
    /// Monotonic time (ns) for the rate limiter.
    public var now: UInt64
    /// Upgraded connections open now (for the tunnel cap).
    public var openTunnels: Int
    /// Every field name is a token and no value has a control byte other than tab: the reader already refused the
    /// rest (`HTTP1Wire`'s strict form), so the framing checks need not walk them again.
    public var fieldSyntaxChecked: Bool

    public init(method: String, target: String, isHTTP10: Bool, isHTTP2: Bool, fields: AdmissionFields, fieldCount: Int,
                client: IPAddress?, now: UInt64, openTunnels: Int, fieldSyntaxChecked: Bool = false) {
        self.fieldSyntaxChecked = fieldSyntaxChecked
        self.method = method
        self.target = target
        self.isHTTP10 = isHTTP10
        self.isHTTP2 = isHTTP2
        self.fields = fields
        self.fieldCount = fieldCount
        self.client = client
        self.now = now
        self.openTunnels = openTunnels
    }
}

/// What admission let through: where the request goes and how its body is framed.
public struct Admitted: Equatable, Sendable {
    /// Index of the route in the configuration's routes.
    public var route: Int
    public var framing: BodyFraming
    /// `Host` without port, lower case.
    public var host: String
    /// The request declares a body.
    public var hasBody: Bool
    /// `Expect: 100-continue` on a request with a body: the edge answers 100 itself.
    public var expectContinue: Bool
    /// An upgrade the route allows (the origin's 101 makes a tunnel).
    public var upgrade: UpgradeRequest?
    /// The connection closes after this exchange (an `Upgrade: h2c` that was not taken: the parser stops after it).
    public var closeAfter: Bool
}

/// Why a request is answered by the edge itself, and how.
public struct Rejection: Equatable, Sendable {
    /// What the edge counts it as.
    public enum Kind: String, Sendable { case protocolError, rateLimited, noRoute, denied, tooMany }
    public var status: Int
    public var body: String
    public var kind: Kind
    /// The connection closes after the answer.
    public var close: Bool
    /// Lingering close: the client may still be sending a body that must be read and dropped.
    public var linger: Bool
    public var retryAfter: Int?
}

/// The admission phase, pure: framing (request smuggling), limits, Host, rate limit, route, deny rules and upgrades
/// → proceed or a rejection. Checks run in that order; the first failing one answers.
public struct Admission: Sendable {
    public enum Verdict: Equatable, Sendable {
        case proceed(Admitted)
        case reject(Rejection)
    }

    /// Per route: its deny rules and the upgrades it allows.
    public struct RouteRules: Sendable {
        public var deny: DenyMatcher
        public var upgrade: [String]
        public init(deny: DenyMatcher, upgrade: [String]) {
            self.deny = deny
            self.upgrade = upgrade
        }
    }

    public let limits: ProxyLimits
    public let routes: RouteTable
    public let rules: [RouteRules]
    /// nil when rate limiting is off.
    public let rateLimiter: RequestRateLimiter?
    public let maxTunnels: Int

    public init(limits: ProxyLimits, routes: RouteTable, rules: [RouteRules], rateLimiter: RequestRateLimiter?, maxTunnels: Int) {
        self.limits = limits
        self.routes = routes
        self.rules = rules
        self.rateLimiter = rateLimiter
        self.maxTunnels = maxTunnels
    }

    /// Admits or rejects one request.
    public func admit(_ r: AdmissionRequest) -> Verdict {
        if r.method == "CONNECT" { return reject(405, "CONNECT is not served\n", .protocolError, close: true) }
        // One pass over the fields: framing first (a request whose body length is ambiguous cannot be answered and
        // then continued safely), the size of the header section, Host.
        var checker = FramingChecker(syntaxChecked: r.fieldSyntaxChecked)
        var verdict: FramingVerdict?
        var headerBytes = 0
        var host: String?
        var hostCount = 0
        for (name, value) in r.fields {
            if verdict == nil { verdict = checker.add(name: name, value: value) }
            headerBytes += name.utf8.count + value.utf8.count + 4
            if HTTPText.nameEquals(name, "host") {
                host = value
                hostCount += 1
            }
        }
        let framing: BodyFraming
        switch verdict ?? checker.verdict {
        case .reject(let reason): return reject(400, "bad request framing: \(reason)\n", .protocolError, close: true)
        case .ok(let f): framing = f
        }
        if let refusal = checkLimits(r, headerBytes: headerBytes, hostCount: hostCount) { return .reject(refusal) }
        var hasBody = false
        switch framing {
        case .none: break
        case .length(let n):
            hasBody = n > 0
            if n > limits.maxBodyBytes {
                return reject(413, "request body larger than \(limits.maxBodyBytes) bytes\n", .protocolError, close: true, linger: true)
            }
        case .chunked: hasBody = true
        }
        if let limiter = rateLimiter, let client = r.client, case .deny(let retry) = limiter.take(client, now: r.now) {
            return reject(429, "rate limit exceeded\n", .rateLimited, close: hasBody, linger: hasBody, retryAfter: retry)
        }
        let hostValue = host.map(Self.hostWithoutPort) ?? ""
        let path = r.target.utf8.firstIndex(of: UInt8(ascii: "?")).map { r.target[..<$0] } ?? r.target[...]
        guard let route = routes.lookup(host: hostValue, path: path), route < rules.count else {
            return reject(404, "no route for this host and path\n", .noRoute, close: hasBody, linger: hasBody)
        }
        let rule = rules[route]
        if !rule.deny.isEmpty && rule.deny.denies(method: r.method, path: String(path), header: { field(r.fields, $0) }) {
            return reject(403, "forbidden\n", .denied, close: hasBody, linger: hasBody)
        }
        var admitted = Admitted(route: route, framing: framing, host: hostValue, hasBody: hasBody,
                                expectContinue: hasBody && !r.isHTTP10 && Self.expectsContinue(r.fields),
                                upgrade: nil, closeAfter: false)
        if !r.isHTTP2, let upgrade = UpgradeRequest.parse(r.fields) {
            switch UpgradeVerdict.decide(upgrade, allowed: rule.upgrade) {
            case .ignore: admitted.closeAfter = true
            case .refuse(let names):
                return reject(403, "upgrade to \(names) is not allowed on this route\n", .denied, close: true)
            case .tunnel(let u):
                if r.openTunnels >= maxTunnels {
                    return reject(503, "too many upgraded connections\n", .tooMany, close: true, retryAfter: 5)
                }
                admitted.upgrade = u
            }
        }
        return .proceed(admitted)
    }

    /// 414, 431 and the one-Host rule (RFC 9112 §3.2).
    private func checkLimits(_ r: AdmissionRequest, headerBytes: Int, hostCount: Int) -> Rejection? {
        if r.target.utf8.count > limits.maxRequestLineBytes {
            return rejection(414, "request target too long\n", .protocolError, close: true)
        }
        if r.fieldCount > limits.maxHeaderCount {
            return rejection(431, "too many header fields\n", .protocolError, close: true)
        }
        if headerBytes > limits.maxHeaderBytes {
            return rejection(431, "header section too large\n", .protocolError, close: true)
        }
        if hostCount > 1 || (hostCount == 0 && !r.isHTTP10) {
            return rejection(400, "exactly one Host header is required\n", .protocolError, close: true)
        }
        return nil
    }

    private func rejection(_ status: Int, _ body: String, _ kind: Rejection.Kind, close: Bool, linger: Bool = false,
                           retryAfter: Int? = nil) -> Rejection {
        Rejection(status: status, body: body, kind: kind, close: close, linger: linger, retryAfter: retryAfter)
    }

    private func reject(_ status: Int, _ body: String, _ kind: Rejection.Kind, close: Bool, linger: Bool = false,
                        retryAfter: Int? = nil) -> Verdict {
        .reject(rejection(status, body, kind, close: close, linger: linger, retryAfter: retryAfter))
    }

    /// `Host` without a port, lower case (ASCII letters: a host name has no others).
    public static func hostWithoutPort(_ host: String) -> String {
        let original = host
        var host = host
        return host.withUTF8 { b -> String in
            var end = b.count
            if b.first == UInt8(ascii: "[") {
                if let close = b.firstIndex(of: UInt8(ascii: "]")) { end = close + 1 }
            } else if let colon = b.lastIndex(of: UInt8(ascii: ":")) {
                end = colon
            }
            let part = UnsafeBufferPointer(rebasing: b[..<end])
            guard part.contains(where: { $0 >= 65 && $0 <= 90 }) else {
                return end == b.count ? original : String(decoding: part, as: UTF8.self)
            }
            return HTTPText.lowercasedASCII(UnsafeRawBufferPointer(part))
        }
    }

    /// `http://authority/path?q` → (`authority`, `/path?q`) (RFC 9112 §3.2.2); nil for any other form.
    public static func splitAbsoluteForm(_ uri: String) -> (authority: String, target: String)? {
        guard let (schemeLength, _) = HTTPText.httpScheme(uri) else { return nil }
        let rest = uri.dropFirst(schemeLength)
        let end = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<end]
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        var target = String(rest[end...])
        if !target.hasPrefix("/") { target = "/" + target }
        return (String(authority), target)
    }

    static func expectsContinue(_ fields: AdmissionFields) -> Bool {
        fields.contains { HTTPText.nameEquals($0.name, "expect") && $0.value.lowercased() == "100-continue" }
    }
}

/// The first value of a field (case-insensitive name).
func field(_ fields: AdmissionFields, _ name: String) -> String? {
    let lower = name.lowercased()
    return fields.first { HTTPText.nameEquals($0.name, lower) }?.value
}


/// What a request asks to switch to (RFC 9110 §7.8): the `Upgrade` field's protocols, when `Connection` names
/// `upgrade`.
public struct UpgradeRequest: Equatable, Sendable {
    /// The field as sent (forwarded to the origin as it is).
    public var value: String
    /// Protocol names, lower case, without versions (`websocket`, `h2c`).
    public var protocols: [String]

    /// nil when the request asks for no upgrade.
    public static func parse(_ fields: AdmissionFields) -> UpgradeRequest? {
        var connectionUpgrade = false
        var values = [String]()
        for (name, value) in fields {
            if HTTPText.nameEquals(name, "connection") {
                if value.split(separator: ",").contains(where: { $0.trimmingSpaces().lowercased() == "upgrade" }) {
                    connectionUpgrade = true
                }
            } else if HTTPText.nameEquals(name, "upgrade") {
                values.append(value)
            }
        }
        guard connectionUpgrade, !values.isEmpty else { return nil }
        let names = values.flatMap { $0.split(separator: ",") }.map { v in
            (v.split(separator: "/", maxSplits: 1).first ?? v).trimmingSpaces().lowercased()
        }
        return UpgradeRequest(value: values.joined(separator: ", "), protocols: names)
    }
}

/// What the edge does with an upgrade request on a route.
public enum UpgradeVerdict: Equatable, Sendable {
    /// Forward it with its `Upgrade`; a 101 turns the connection into a tunnel.
    case tunnel(UpgradeRequest)
    /// `Upgrade: h2c` (RFC 7540 §3.2, gone in RFC 9113): answered as plain HTTP/1.1, as nginx does.
    case ignore
    /// Refused with 403 (the route does not allow it).
    case refuse(String)

    public static func decide(_ request: UpgradeRequest, allowed: [String]) -> UpgradeVerdict {
        if request.protocols.contains(where: { allowed.contains($0) }) { return .tunnel(request) }
        if request.protocols.allSatisfy({ $0 == "h2c" }) { return .ignore }
        return .refuse(request.protocols.joined(separator: ", "))
    }
}
