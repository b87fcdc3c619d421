import Foundation

/// The admin API's bearer token source (top-level `admin`): needed by any admin listener off loopback.
public struct AdminSettings: Sendable, Equatable {
    /// File holding the token (relative paths are resolved against the topology's folder).
    public var tokenFile: String?
    /// Environment variable holding the token (read when there is no `tokenFile`).
    public var tokenEnvironment: String

    public init(tokenFile: String? = nil, tokenEnvironment: String = "LODESTAR_ADMIN_TOKEN") {
        self.tokenFile = tokenFile
        self.tokenEnvironment = tokenEnvironment
    }

    /// Shortest token accepted (bytes).
    public static let minimumTokenLength = 16

    /// Reads the token: the file's first line, or the environment variable. Throws a message naming the source.
    public func token(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let raw: String
        let source: String
        if let tokenFile {
            source = "admin.tokenFile \(tokenFile)"
            guard let data = FileManager.default.contents(atPath: tokenFile), let text = String(data: data, encoding: .utf8) else {
                throw AdminTokenError(description: "\(source): cannot read the file")
            }
            raw = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        } else {
            source = "admin.tokenEnvironment \(tokenEnvironment)"
            raw = environment[tokenEnvironment] ?? ""
        }
        let token = raw.trimmingCharacters(in: .whitespaces)
        guard token.utf8.count >= Self.minimumTokenLength else {
            throw AdminTokenError(description: "\(source): the token is missing or shorter than \(Self.minimumTokenLength) bytes")
        }
        guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw AdminTokenError(description: "\(source): the token must be printable ASCII without spaces")
        }
        return token
    }
}

/// Why the admin token could not be read.
public struct AdminTokenError: Error, CustomStringConvertible {
    public var description: String
}

extension TopologyParser {
    /// `admin`: where the bearer token comes from.
    func parseAdmin(_ node: JSONNode) -> AdminSettings? {
        guard let f = node.object(allowed: ["tokenFile", "tokenEnvironment"]) else { return nil }
        var settings = AdminSettings()
        var ok = true
        if let fn = f["tokenFile"] {
            settings.tokenFile = fn.string()
            if settings.tokenFile?.isEmpty ?? true { fn.fail("a token file path is needed"); ok = false }
        }
        if let en = f["tokenEnvironment"] {
            let e = en.string() ?? ""
            if e.isEmpty || !e.utf8.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }) {
                en.fail("\"\(e)\" is not an environment variable name (A-Z, 0-9, _)")
                ok = false
            } else {
                settings.tokenEnvironment = e
            }
        }
        return ok ? settings : nil
    }

    /// An admin listener off loopback needs the `admin` section: the API must not be open to the network.
    func checkAdmin(edges: [Edge], dns: DNSSettings, hasToken: Bool, edgesNode: JSONNode, dnsNode: JSONNode) {
        guard !hasToken else { return }
        let reason = "an admin listener off loopback needs the top-level \"admin\" section (a bearer token)"
        for (i, e) in edges.enumerated() {
            if let a = e.admin, !a.host.isLoopback { edgesNode.sink.add(path: edgesNode.path + "[\(i)].admin", reason: reason) }
        }
        if let a = dns.admin, !a.host.isLoopback { dnsNode.sink.add(path: dnsNode.childPath("admin"), reason: reason) }
    }
}
