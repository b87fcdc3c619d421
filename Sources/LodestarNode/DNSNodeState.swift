import Dispatch
import Foundation
import LodestarDNS
import LodestarDNSServer
import LodestarGeo
import LodestarGossip
import LodestarMetrics
import LodestarSelection
import LodestarStatusPage
import LodestarTopology
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals
import LodestarAdmin

/// What a DNS node builds its `Authority` from, the operator's down marks it keeps current (`--down`, the down file,
/// drains through the admin API), and the reload that SIGHUP and `POST /reload` share.
package final class DNSNodeState: DNSAdminSource, @unchecked Sendable {
    package let topologyPath: String
    package let geoOverride: String?
    package let flagDown: Set<String>
    package let health: LiveHealthView
    package let logger: Logger
    private let lock = NSLock()
    private var downFile: String?
    private var downFileStamp: Date?
    private var fileDown: Set<String> = []
    private var topology: Topology?
    /// The topology in force.
    package var currentTopology: Topology? { lock.withLock { topology } }
    /// Operator drains through the admin API ("edge:<id>" or "region:<id>"), shared with the other DNS nodes by gossip
    /// and kept in the state file; nil until `attachDrains` (before serving).
    private(set) var drainBook: DrainBook?
    /// The DNS node this process runs (`--node`; nil: the topology's first), applied again on every reload.
    package var node: String?
    private let reloadLock = NSLock()
    package var box: AuthorityBox?
    package var tracker: ConfigTracker?

    package init(topologyPath: String, geoOverride: String?, flagDown: Set<String>, health: LiveHealthView, logger: Logger) {
        self.topologyPath = topologyPath
        self.geoOverride = geoOverride
        self.flagDown = flagDown
        self.health = health
        self.logger = logger
    }

    package func geoPath(for t: Topology) -> String { geoOverride ?? t.dns.geoDatabase }

    /// The configuration version of `t` as loaded from the topology file now.
    package func version(for t: Topology) -> String {
        ConfigTracker.version(topologyPath: topologyPath, geoPath: geoPath(for: t))
    }

    /// Opens the GeoIP database afresh (so a reload picks up a replaced `.mmdb`) and makes an `Authority`;
    /// throws, leaving the running configuration alone, when the database cannot be opened.
    package func build(from t: Topology, version: String) throws -> Authority {
        let path = geoPath(for: t)
        let unknown = flagDown.subtracting(t.edges.map(\.id))
        if !unknown.isEmpty { throw NodeStartError.other("--down: unknown edge(s) \(unknown.sorted().joined(separator: ", "))") }
        // The engine is compiled from its own reading of the file, closed afterwards, so the pages it walked leave
        // with it; the database kept open serves `/explain` and the rare answers the engine leaves to the reference.
        let engine = try AnswerEngine.compile(database: try GeoDatabase(path: path), topology: t)
        logger.notice("answer engine compiled", metadata: ["database": "\(path)", "stats": "\(engine.stats)"])
        let db = try GeoDatabase(path: path)
        lock.withLock {
            downFile = t.dns.downFile
            downFileStamp = nil
            topology = t
        }
        refreshDown()
        if let sec = t.dns.dnssec, sec.keys.isEmpty, runKeys.isEmpty {
            // No key file: a key for this process (kept across reloads). Its DS changes with every start, so no parent
            // can publish it and resolvers treat the zone as unsigned: harmless, and the sample topology signs as shipped.
            let key = DNSSECKey.generate()
            runKeys = [key]
            logger.warning("dns.dnssec.keys lists no key file: signing with a key made for this run; list key files (lodestar dnssec keygen) for a zone resolvers can validate",
                           metadata: ["ds": "\(key.dsRecord(owner: (DNSName(t.zone.name) ?? .root).lowercased))"])
        }
        return Authority(topology: t, geo: db, health: health, configVersion: version, engine: engine,
                         signer: try Self.signer(for: t, runKeys: runKeys))
    }

    /// The key made for this process when `dns.dnssec` lists no key file (kept across reloads). `build` makes it, with
    /// a warning, unless the caller gave one (`lodestar up`, which prints its DS itself).
    package var runKeys: [DNSSECKey] = []

    /// The zone's signer from `dns.dnssec` (nil when the zone is not signed); throws with the setting and the reason
    /// when a key file cannot be used, so a reload keeps the running keys.
    package static func signer(for t: Topology, runKeys: [DNSSECKey]) throws -> ZoneSigner? {
        guard let sec = t.dns.dnssec else { return nil }
        let apex = DNSName(t.zone.name) ?? .root
        var keys = [ZoneSigner.ZoneKey]()
        for (i, file) in sec.keys.enumerated() {
            do {
                keys.append(.init(try DNSSECKey.load(privateFile: file.path), signs: file.signs))
            } catch {
                throw NodeStartError.other("dns.dnssec.keys[\(i)]: \(error)")
            }
        }
        if sec.keys.isEmpty { keys = runKeys.map { .init($0) } }
        guard !keys.isEmpty else {
            throw NodeStartError.other("dns.dnssec.keys: no signing key; make one with `lodestar dnssec keygen --topology FILE`")
        }
        let timing = ZoneSigner.Timing(validitySeconds: UInt32(sec.signatureValiditySeconds),
                                       inceptionOffsetSeconds: UInt32(sec.inceptionOffsetSeconds),
                                       refreshBeforeSeconds: UInt32(sec.refreshBeforeSeconds))
        return ZoneSigner(apex: apex, keys: keys, timing: timing)
    }

    /// Re-reads the topology and the GeoIP database and swaps them in; on any problem the running configuration
    /// stays and the reason is returned (and logged). One reload at a time.
    package func reload(source: String) -> (ok: Bool, message: String) {
        reloadLock.lock()
        defer { reloadLock.unlock() }
        return tracker?.reload(source: source, topologyPath: topologyPath, logger: logger) {
            let fresh = try Self.select(node, in: try Topology.load(path: topologyPath))
            let version = self.version(for: fresh)
            let authority = try build(from: fresh, version: version)
            box?.replace(with: authority)
            return (.init(version: version, serial: fresh.zone.soa.serial, loadedAt: Date()), "serial \(fresh.zone.soa.serial)")
        } ?? (false, "no configuration tracker")
    }

    /// The topology as DNS node `node` runs it (`--node`; nil: as written).
    package static func select(_ node: String?, in t: Topology) throws -> Topology {
        guard let node else { return t }
        guard let chosen = t.selectingDNSNode(node) else {
            throw NodeStartError.other("--node \(node): no DNS node has that id (dns.nodeId or dns.nodes[].nodeId)")
        }
        return chosen
    }

    /// Opens the drain book of the node `t` describes (its state file read back) and makes a peer's gossiped drains
    /// take effect here.
    package func attachDrains(for t: Topology) {
        let folder = (topologyPath as NSString).deletingLastPathComponent
        let path = t.dns.stateFile ?? (folder as NSString).appendingPathComponent("\(t.dns.nodeId).state.json")
        drainBook = DrainBook(nodeId: t.dns.nodeId, path: path, logger: logger)
        refreshDown()
    }

    /// A peer DNS node's gossiped drain table.
    package func peerDrains(_ bytes: [UInt8], from peer: String) {
        if drainBook?.merge(bytes, from: peer) == true { refreshDown() }
    }

    /// The active drains: target → entry.
    private var activeDrains: [String: OperatorDrains.Entry] { drainBook?.active ?? [:] }

    /// Starts (`on`) or ends an operator drain of an edge or a whole region; returns the drains in force, or an error.
    package func drain(_ on: Bool, edge: String?, region: String?, reason: String) -> Result<[StatusSnapshot.Drain], DrainError> {
        let t = lock.withLock { topology }
        let key: String
        if let edge {
            guard t?.edge(edge) != nil else { return .failure(DrainError(description: "no edge \"\(edge)\" in the topology")) }
            key = "edge:" + edge
        } else if let region {
            guard t?.region(region) != nil else { return .failure(DrainError(description: "no region \"\(region)\" in the topology")) }
            key = "region:" + region
        } else {
            return .failure(DrainError(description: "give edge=ID or region=ID"))
        }
        drainBook?.set(key, active: on, reason: reason)
        logger.notice(on ? "operator drain" : "operator drain ended", metadata: ["target": "\(key)", "reason": "\(reason)"])
        refreshDown()
        return .success(drainList())
    }

    /// Why an edge is kept out of answers by an operator (empty when it is not).
    package func operatorReasons(edge id: String) -> [String] {
        let (t, file) = lock.withLock { (topology, fileDown) }
        let drains = activeDrains
        var out = [String]()
        if flagDown.contains(id) { out.append("marked down by --down") }
        if file.contains(id) { out.append("listed in the down file") }
        if let d = drains["edge:" + id] { out.append("drained through the admin API of \(d.setBy) at \(Self.isoMs(d.stamp)): \(d.reason)") }
        if let region = t?.edge(id)?.region, let d = drains["region:" + region] {
            out.append("region \(region) drained through the admin API of \(d.setBy) at \(Self.isoMs(d.stamp)): \(d.reason)")
        }
        return out
    }

    /// The operator drains in force.
    package func drainList() -> [StatusSnapshot.Drain] {
        activeDrains.sorted { $0.key < $1.key }.map {
            .init(target: $0.key, reason: $0.value.reason, since: Self.isoMs($0.value.stamp), setBy: $0.value.setBy)
        }
    }

    package static func isoMs(_ ms: UInt64) -> String { iso(Date(timeIntervalSince1970: Double(ms) / 1000)) }

    /// Re-reads the down file when it changed; marks `--down` edges, the file's edges and drained edges and regions down.
    package func refreshDown() {
        let (file, stamp) = lock.withLock { (downFile, downFileStamp) }
        if let file {
            let attrs = try? FileManager.default.attributesOfItem(atPath: file)
            let mtime = attrs?[.modificationDate] as? Date
            if !(mtime == stamp && stamp != nil) {
                let listed = (try? String(contentsOfFile: file, encoding: .utf8)).map(StaticHealthView.parseDownFile) ?? []
                lock.withLock {
                    fileDown = listed
                    downFileStamp = mtime
                }
            }
        } else {
            lock.withLock { fileDown = [] }
        }
        let drainKeys = activeDrains.keys
        let ids = lock.withLock { () -> Set<String> in
            var ids = flagDown.union(fileDown)
            for key in drainKeys {
                if key.hasPrefix("edge:") { ids.insert(String(key.dropFirst(5))) }
                if key.hasPrefix("region:"), let t = topology {
                    let region = String(key.dropFirst(7))
                    ids.formUnion(t.edges.filter { $0.region == region }.map(\.id))
                }
            }
            return ids
        }
        if ids != health.operatorDown {
            logger.notice("edges marked down changed", metadata: ["down": "\(ids.sorted())"])
            health.setDown(ids)
        }
    }

    /// Polls the down file (named in the topology; re-read when its modification time changes).
    package func watchDownFile(every interval: DispatchTimeInterval) -> any DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler { [weak self] in
            self?.drainBook?.forgetOldUndrains()
            self?.refreshDown()
        }
        timer.resume()
        return timer
    }
}

/// Runs handlers for POSIX signals on a dispatch queue (the default action is disabled for each).
package final class SignalWatcher: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []

    package init() {}

    package func on(_ signalNumber: Int32, _ handler: @escaping @Sendable () -> Void) {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
        source.setEventHandler(handler: handler)
        source.resume()
        sources.append(source)
    }
}
