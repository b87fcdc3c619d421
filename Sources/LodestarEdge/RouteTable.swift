/// Route selection that does not grow with the number of routes (nginx's server-name hashes, HAProxy's trees):
/// exact host names in a hash, `*.suffix` patterns in a hash of suffixes walked label by label from the right, `*`
/// apart; within each host, routes ordered by path-prefix length. Among all routes whose hosts match, the longest
/// path prefix wins; on a tie, the first in the file. Built once per configuration, immutable, shared by all loops.
public struct RouteTable: Sendable {
    /// A route's place in the file and its path prefix.
    struct Entry: Sendable {
        let index: Int
        let prefix: String
        /// `prefix.utf8.count`.
        let length: Int

        init(index: Int, prefix: String) {
            self.index = index
            self.prefix = prefix
            length = prefix.utf8.count
        }
    }

    /// Routes per exact host name, longest prefix first (then file order).
    private let exact: [String: [Entry]]
    /// Routes per wildcard suffix (`.example.test` for `*.example.test`), longest prefix first.
    private let suffixes: [String: [Entry]]
    /// Routes for any host.
    private let any: [Entry]
    /// The most labels any wildcard suffix has (bounds the walk).
    private let deepestSuffix: Int

    /// `routes[i]` is (host patterns, path prefix) of route `i`.
    public init(_ routes: [(hosts: [String], pathPrefix: String)]) {
        var exact = [String: [Entry]]()
        var suffixes = [String: [Entry]]()
        var any = [Entry]()
        var deepest = 0
        for (i, r) in routes.enumerated() {
            let e = Entry(index: i, prefix: r.pathPrefix)
            for pattern in Set(r.hosts) {
                if pattern == "*" {
                    any.append(e)
                } else if pattern.hasPrefix("*.") {
                    let suffix = String(pattern.dropFirst(1))
                    suffixes[suffix, default: []].append(e)
                    deepest = max(deepest, suffix.utf8.filter { $0 == UInt8(ascii: ".") }.count)
                } else {
                    exact[pattern, default: []].append(e)
                }
            }
        }
        func ordered(_ list: [Entry]) -> [Entry] {
            list.sorted { a, b in
                a.length != b.length ? a.length > b.length : a.index < b.index
            }
        }
        self.exact = exact.mapValues(ordered)
        self.suffixes = suffixes.mapValues(ordered)
        self.any = ordered(any)
        self.deepestSuffix = deepest
    }

    /// The index of the route for a host (lower case, without port) and a path; nil when none matches.
    public func lookup(host: Substring, path: Substring) -> Int? {
        lookup(host: String(host), path: path)
    }

    /// The same for a host `String` (no copy for the exact-host hash).
    public func lookup(host: String, path: Substring) -> Int? {
        var best: Entry?
        func consider(_ list: [Entry]?) {
            guard let list else { return }
            // Longest prefix first: the first match in a list is that list's best. Prefixes compare as bytes (as
            // nginx's locations do), not as Unicode characters.
            for e in list {
                if let b = best, e.length < b.length { return }
                if e.length <= path.utf8.count && path.utf8.starts(with: e.prefix.utf8) {
                    if let b = best, b.length == e.length, b.index < e.index { return }
                    best = e
                    return
                }
            }
        }
        if !exact.isEmpty { consider(exact[host]) }
        if !suffixes.isEmpty {
            // `a.b.example.test` tries `.b.example.test`, `.example.test`, `.test` (a wildcard needs one label before it).
            var dots = 0
            let u = host.utf8
            var i = u.endIndex
            while i > u.startIndex && dots < deepestSuffix {
                i = u.index(before: i)
                if u[i] == UInt8(ascii: ".") {
                    dots += 1
                    if i > u.startIndex { consider(suffixes[String(Substring(u[i...]))]) }
                }
            }
        }
        consider(any)
        return best?.index
    }
}
