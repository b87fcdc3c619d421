import ArgumentParser
import Foundation
import LodestarNode
import LodestarGossip
import LodestarGossipServer
import LodestarTopology

/// `lodestar check FILE`: validates a topology and prints every problem with file, JSON path and reason.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a topology file; prints each error as FILE: JSON.PATH: REASON and exits non-zero on any.")

    @Argument(help: "Topology file to check.")
    var file: String = "topology.json"

    func run() throws {
        let t: Topology
        do {
            t = try Topology.load(path: file)
        } catch let errors as TopologyErrors {
            for issue in errors.issues { printError(issue.description) }
            printError("\(file): \(errors.issues.count) error(s)")
            throw ExitCode(1)
        }
        var problems = missingFiles(t)
        let gossipNote = gossipCheck(t, problems: &problems)
        let dnssecNote = dnssecCheck(t, problems: &problems)
        guard problems.isEmpty else {
            problems.forEach { printError($0) }
            throw ExitCode(1)
        }
        print("\(file): OK — zone \(t.zone.name), \(t.regions.count) regions, \(t.edges.count) edges, "
              + "\(t.services.count) services, \(t.zone.records.count) static records, "
              + "\(t.pools.count) origin pools, \(t.routes.count) routes" + gossipNote + dnssecNote)
    }

    /// The GeoIP database and the listeners' certificate files that do not exist or cannot be read.
    func missingFiles(_ t: Topology) -> [String] {
        var problems = [String]()
        if !FileManager.default.fileExists(atPath: t.dns.geoDatabase) {
            problems.append("\(file): dns.geoDatabase: file \(t.dns.geoDatabase) does not exist")
        }
        for (i, edge) in t.edges.enumerated() {
            for (j, listener) in edge.listen.enumerated() {
                for (k, cert) in (listener.tls?.certificates ?? []).enumerated() {
                    let path = "edges[\(i)].listen[\(j)].tls.certificates[\(k)]"
                    for (field, f) in [("cert", cert.certificatePath), ("key", cert.keyPath)]
                    where !FileManager.default.isReadableFile(atPath: f) {
                        problems.append("\(file): \(path).\(field): file \(f) cannot be read")
                    }
                }
            }
        }
        return problems
    }

    /// The gossip keys: readable when this machine has them (the summary's note; a problem when they do not load).
    func gossipCheck(_ t: Topology, problems: inout [String]) -> String {
        guard let g = t.gossip else { return "" }
        if g.keyFile == nil && (ProcessInfo.processInfo.environment[g.keyEnvironment] ?? "").isEmpty {
            // The key is a secret of the hosts that run the cluster; a machine that only checks files lacks it.
            return ", gossip among \(t.gossipMembers.count) members (key from $\(g.keyEnvironment), not set here)"
        }
        do {
            let keys = try GossipCluster.keyring(g)
            return ", gossip among \(t.gossipMembers.count) members (\(keys.count) key(s))"
        } catch {
            problems.append("\(file): \(error)")
            return ""
        }
    }

    /// The zone signing keys, loaded as a reload would load them.
    func dnssecCheck(_ t: Topology, problems: inout [String]) -> String {
        guard let sec = t.dns.dnssec else { return "" }
        if sec.keys.isEmpty {
            return ", DNSSEC with no key file (a key is made per run; list key files for a zone resolvers validate)"
        }
        do {
            _ = try DNSNodeState.signer(for: t, runKeys: [])
            return ", DNSSEC with \(sec.keys.count) key(s)"
        } catch {
            problems.append("\(file): \(error)")
            return ""
        }
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
