/// Where an origin server is: an address, or a DNS name and a port looked up at run time (each address it has
/// becomes a server of its own).
public enum OriginTarget: Sendable, Hashable, CustomStringConvertible {
    case address(ListenAddress)
    /// A host name (lower case, no trailing dot) and a port.
    case name(String, port: Int)

    public var description: String {
        switch self {
        case .address(let a): return a.description
        case .name(let n, let port): return "\(n):\(port)"
        }
    }
}

/// One origin server of a pool, as the topology gives it.
public struct OriginServer: Sendable, Equatable {
    public var target: OriginTarget
    /// Relative share (1...1000); every address of a named server gets this weight.
    public var weight: Int

    public init(target: OriginTarget, weight: Int = 1) {
        self.target = target
        self.weight = weight
    }

    public init(address: ListenAddress, weight: Int = 1) {
        self.init(target: .address(address), weight: weight)
    }

    /// The address when the server is given as one.
    public var address: ListenAddress? {
        if case .address(let a) = target { return a }
        return nil
    }
}

/// Which of a name's addresses a pool uses (`origins.NAME.resolveFamily`).
public enum AddressFamilyPreference: String, Sendable, Equatable, CaseIterable {
    /// IPv4 addresses when the name has any, else IPv6 (Envoy's V4_PREFERRED).
    case ipv4Preferred = "ipv4-preferred"
    case ipv4
    case ipv6
    /// Every address of both families.
    case any
}

/// The stub resolver the edge uses for origin names (`proxy.resolver`).
public struct ResolverSettings: Sendable, Equatable {
    /// Recursive resolvers asked in turn; empty: the `nameserver` lines of /etc/resolv.conf.
    public var nameservers: [ListenAddress]
    /// Wait for one answer before the next try.
    public var timeoutMs: Int
    /// Tries per lookup, going round the nameservers.
    public var attempts: Int
    /// Names in /etc/hosts are answered from it (and looked at again every `hostsRefreshMs`).
    public var useHostsFile: Bool
    /// Shortest and longest wait before a name is looked up again, whatever its TTL says.
    public var minTTLSeconds: Int
    public var maxTTLSeconds: Int

    public init(nameservers: [ListenAddress] = [], timeoutMs: Int = 1000, attempts: Int = 3, useHostsFile: Bool = true,
                minTTLSeconds: Int = 1, maxTTLSeconds: Int = 300) {
        self.nameservers = nameservers
        self.timeoutMs = timeoutMs
        self.attempts = attempts
        self.useHostsFile = useHostsFile
        self.minTTLSeconds = minTTLSeconds
        self.maxTTLSeconds = maxTTLSeconds
    }
}

extension TopologyParser {
    /// One entry of `origins.NAME.servers`: `"ADDR:PORT"`, `"name:PORT"`, or `{"address": …, "weight": N}`.
    func parseOriginServer(_ node: JSONNode) -> OriginServer? {
        if case .string? = node.value { return originTarget(node).map { OriginServer(target: $0) } }
        guard let f = node.object(allowed: ["address", "weight"]) else { return nil }
        let target = required(f, "address", in: node).flatMap(originTarget)
        let weight = f["weight"].map { $0.int(in: 1...1000) } ?? 1
        guard let target, let weight else { return nil }
        return OriginServer(target: target, weight: weight)
    }

    /// `A.B.C.D:PORT`, `[V6]:PORT` or `host.name:PORT`.
    func originTarget(_ node: JSONNode) -> OriginTarget? {
        guard let s = node.string() else { return nil }
        if let a = ListenAddress(s) { return .address(a) }
        guard let colon = s.lastIndex(of: ":"), !s.hasPrefix("["),
              let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else {
            node.fail("\"\(s)\" is not ADDRESS:PORT, [ADDRESS]:PORT or NAME:PORT")
            return nil
        }
        let host = String(s[..<colon])
        guard host.contains(where: { $0.isLetter }) else {
            node.fail("\"\(host)\" is neither an IP address nor a host name")
            return nil
        }
        return checkedName(host, node: node).map { .name($0, port: port) }
    }

    /// `proxy.resolver`.
    func parseResolver(_ node: JSONNode) -> ResolverSettings? {
        guard let f = node.object(allowed: ["nameservers", "timeoutMs", "attempts", "useHostsFile", "minTTLSeconds",
                                            "maxTTLSeconds"]) else { return nil }
        let d = ResolverSettings()
        var servers: [ListenAddress]? = d.nameservers
        if let sn = f["nameservers"] {
            servers = sn.array()?.compactMap { item -> ListenAddress? in
                guard let text = item.string() else { return nil }
                if let a = ListenAddress(text) { return a }
                if let ip = IPAddress(text) { return ListenAddress(host: ip, port: 53) }
                item.fail("\"\(text)\" is not ADDRESS, ADDRESS:PORT or [ADDRESS]:PORT")
                return nil
            }
        }
        let timeout = f["timeoutMs"].map { $0.int(in: 10...60_000) } ?? d.timeoutMs
        let attempts = f["attempts"].map { $0.int(in: 1...10) } ?? d.attempts
        let hosts = f["useHostsFile"].map { $0.bool() } ?? d.useHostsFile
        let minTTL = f["minTTLSeconds"].map { $0.int(in: 0...86_400) } ?? d.minTTLSeconds
        let maxTTL = f["maxTTLSeconds"].map { $0.int(in: 1...86_400) } ?? d.maxTTLSeconds
        guard let servers, let timeout, let attempts, let hosts, let minTTL, let maxTTL else { return nil }
        if minTTL > maxTTL { node.fail("minTTLSeconds (\(minTTL)) is above maxTTLSeconds (\(maxTTL))"); return nil }
        return ResolverSettings(nameservers: servers, timeoutMs: timeout, attempts: attempts, useHostsFile: hosts,
                                minTTLSeconds: minTTL, maxTTLSeconds: maxTTL)
    }
}
