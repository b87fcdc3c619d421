/// The zone's consistency checks over its records as a whole: CNAME owners alone at their name, and no CNAME loops.
extension TopologyParser {
    /// RFC 1034 §3.6.2: a CNAME owner has no other data.
    func checkCNAMEs(_ records: [StaticRecord], node: JSONNode?) {
        guard let node else { return }
        var byName = [String: Int]()
        var cnames = Set<String>()
        for r in records {
            byName[r.name, default: 0] += 1
            if case .cname = r.data { cnames.insert(r.name) }
        }
        for n in cnames.sorted() where byName[n, default: 0] > 1 {
            node.fail("\(n) has a CNAME and other records (RFC 1034 §3.6.2)")
        }
        for cycle in Self.cnameLoops(records) {
            node.fail("CNAME loop: " + (cycle + [cycle[0]]).joined(separator: " → "))
        }
    }

    /// Every cycle of in-zone CNAMEs (a chain that comes back to a name it passed), each once, starting at its
    /// smallest name; chains that merely lead into a cycle are not reported again.
    static func cnameLoops(_ records: [StaticRecord]) -> [[String]] {
        var target = [String: String]()
        for r in records {
            if case .cname(let t) = r.data { target[r.name] = t }
        }
        var cycles: [[String]] = []
        var reported = Set<String>()
        for start in target.keys.sorted() {
            var path = [start]
            var current = start
            while let next = target[current], path.count <= target.count {
                if let i = path.firstIndex(of: next) {
                    let cycle = Array(path[i...])
                    let first = cycle.firstIndex(of: cycle.min() ?? next) ?? 0
                    let canonical = Array(cycle[first...] + cycle[..<first])
                    if reported.insert(canonical[0]).inserted { cycles.append(canonical) }
                    break
                }
                path.append(next)
                current = next
            }
        }
        return cycles
    }
}
