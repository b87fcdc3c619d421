import LodestarTopology

/// The system's resolver files, read as text: the `nameserver` lines of resolv.conf(5) and the host table of
/// hosts(5). Pure: the caller reads the files.
public enum ResolverFiles {
    /// The nameservers of a resolv.conf, port 53, in file order (scoped IPv6 addresses, which need an interface,
    /// are skipped).
    public static func nameservers(resolvConf text: String) -> [ListenAddress] {
        var out = [ListenAddress]()
        for line in text.split(whereSeparator: \.isNewline) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver", let ip = IPAddress(String(words[1])) else { continue }
            out.append(ListenAddress(host: ip, port: 53))
        }
        return out
    }

    /// The addresses each name (lower case) has in a hosts file, in file order; comments and malformed lines are
    /// skipped.
    public static func hosts(_ text: String) -> [String: [IPAddress]] {
        var out = [String: [IPAddress]]()
        for line in text.split(whereSeparator: \.isNewline) {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, let ip = IPAddress(String(words[0])) else { continue }
            for name in words.dropFirst() {
                var key = name.lowercased()
                if key.hasSuffix(".") { key.removeLast() }
                if !(out[key]?.contains(ip) ?? false) { out[key, default: []].append(ip) }
            }
        }
        return out
    }
}
