import Foundation
import LodestarGeo
import LodestarSelection
import LodestarGossip
import LodestarTopology
import NIOCore

/// What the gossip section of a topology means for one process: keys, timings, peers, and how the DNS tier reads
/// the members' states.
public enum GossipCluster {
    /// A gossip setup that cannot work (no key, an unreadable key file, a bad address).
    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
        /// An error with its message.
        public init(description: String) { self.description = description }
    }

    /// The keys: the key file when the topology names one, else the environment variable (comma- or newline-
    /// separated). Gossip is always authenticated: no key, no gossip.
    public static func keyring(_ settings: GossipSettings,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GossipKeyring {
        let text: String
        if let file = settings.keyFile {
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw SetupError(description: "gossip.keyFile: cannot read \(file): \((error as NSError).localizedDescription)")
            }
        } else if let value = environment[settings.keyEnvironment], !value.isEmpty {
            text = value.replacingOccurrences(of: ",", with: "\n")
        } else {
            throw SetupError(description: "gossip: no key: set gossip.keyFile or the environment variable \(settings.keyEnvironment)")
        }
        do {
            return try GossipKeyring.parse(text)
        } catch {
            throw SetupError(description: "gossip key (\(settings.keyFile ?? settings.keyEnvironment)): \(error.reason)")
        }
    }

    /// SWIM timings from the probe period: direct ping 30 % of it, indirect 40 %, suspicion from 10 periods down to 2
    /// as independent confirmations arrive (Lifeguard; 2 expected, so a real crash that every neighbour sees is
    /// declared after about 2 periods, while a lone false suspicion under packet loss has 10 to be refuted), full
    /// sync every 30 s. RuntimeTimingTests checks these timings for false deaths at 10 % loss.
    public static func swimSettings(_ settings: GossipSettings) -> SWIMSettings {
        var s = SWIMSettings()
        let period = Int64(settings.probeIntervalMs)
        s.probeInterval = .milliseconds(period)
        s.pingTimeout = .milliseconds(max(10, period * 3 / 10))
        s.indirectPingTimeout = .milliseconds(max(10, period * 4 / 10))
        s.suspicionTimeoutMin = .milliseconds(period * 2)
        s.suspicionTimeoutMax = .milliseconds(period * 10)
        s.suspicionConfirmationsExpected = 2
        return s
    }

    /// Every member's id and gossip address from the topology.
    public static func peers(_ topology: Topology) throws -> [SWIMNodeID: SocketAddress] {
        var out: [SWIMNodeID: SocketAddress] = [:]
        for m in topology.gossipMembers {
            out[SWIMNodeID(m.id)] = try socketAddress(m.address)
        }
        return out
    }

    /// A topology address as a socket address.
    public static func socketAddress(_ a: ListenAddress) throws -> SocketAddress {
        do {
            return try SocketAddress(ipAddress: a.host.description, port: a.port)
        } catch {
            throw SetupError(description: "gossip: \(a) is not a usable address: \(error)")
        }
    }

    /// The DNS tier's view of the edges from the members it sees, as `EdgeHealthPolicy` judges them: dead or left
    /// members and draining edges are down, an edge with no healthy origin at all is down, suspect members stay in
    /// (with a short TTL), and an edge above `watermark` of its capacity sheds the share of queries that would bring
    /// it back to the watermark (at most 95 %). Members that are not edges of `edgeIds` are left out.
    public static func edgeHealth(_ members: [SWIMMember], edgeIds: Set<String>, watermark: Double) -> [String: EdgeHealth] {
        let policy = EdgeHealthPolicy(overloadWatermark: watermark)
        var out: [String: EdgeHealth] = [:]
        for m in members where edgeIds.contains(m.node.name) {
            out[m.node.name] = policy.gossipHealth(membership: m.status, published: EdgeState(decoding: m.metadata.bytes))
        }
        return out
    }
}
