import Crypto
import Foundation
import LodestarAdmin
import LodestarMetrics
import LodestarStatusPage
import LodestarTopology
import Logging
import Metrics
import Prometheus
import Synchronization

/// What configuration a process runs: a version digest, when it was loaded, and how reloads went. Feeds `/status`,
/// `CH TXT config.lodestar.` and the `lodestar_config_*` metrics.
package final class ConfigTracker: Sendable {
    /// One loaded configuration.
    package struct Loaded: Sendable {
        var version: String
        var serial: UInt32
        var loadedAt: Date
    }

    private let state: Mutex<(current: Loaded, lastError: String?, lastAttempt: Date?)>
    private let reloads: [Prometheus.Counter]
    private let loadedAt: Prometheus.Gauge

    package init(role: String, initial: Loaded, hub: MetricsHub) {
        state = Mutex((initial, nil, nil))
        reloads = ["ok", "refused"].map {
            hub.counter("lodestar_config_reloads_total", [("role", role), ("result", $0)],
                        help: "Reloads of the topology (SIGHUP or the admin API), taken or refused.")
        }
        loadedAt = hub.gauge("lodestar_config_loaded_timestamp_seconds", [("role", role)],
                             help: "When the configuration in force was loaded (Unix time).")
        loadedAt.set(to: initial.loadedAt.timeIntervalSince1970)
    }

    /// The configuration in force.
    package var current: Loaded { state.withLock { $0.current } }

    /// Records a reload that was taken.
    package func taken(_ loaded: Loaded) {
        state.withLock { $0 = (loaded, nil, Date()) }
        reloads[0].increment()
        loadedAt.set(to: loaded.loadedAt.timeIntervalSince1970)
    }

    /// Records a reload that was refused, and why.
    package func refused(_ reason: String) {
        state.withLock {
            $0.lastError = reason
            $0.lastAttempt = Date()
        }
        reloads[1].increment()
    }

    /// Runs one reload (SIGHUP or the admin API): `load` reads and swaps in the new configuration, or throws and
    /// leaves the running one alone. Logs and counts the outcome; refusals name file, field and reason.
    package func reload(source: String, topologyPath: String, logger: Logger,
                _ load: () throws -> (Loaded, String)) -> (ok: Bool, message: String) {
        do {
            let (loaded, detail) = try load()
            taken(loaded)
            logger.info("reloaded", metadata: ["topology": "\(topologyPath)", "version": "\(loaded.version)",
                                               "detail": "\(detail)", "source": "\(source)"])
            return (true, "reloaded: version \(loaded.version), \(detail)")
        } catch let errors as TopologyErrors {
            for issue in errors.issues { logger.error("reload refused: \(issue.description)", metadata: ["source": "\(source)"]) }
            logger.error("reload refused; keeping the running configuration", metadata: ["source": "\(source)"])
            let text = errors.issues.map(\.description).joined(separator: "; ")
            refused(text)
            return (false, "reload refused, running configuration kept: \(text)")
        } catch {
            logger.error("reload refused; keeping the running configuration", metadata: ["error": "\(error)", "source": "\(source)"])
            refused("\(error)")
            return (false, "reload refused, running configuration kept: \(error)")
        }
    }

    /// The configuration in force and the latest reload, as `/status` shows them (both roles).
    package var status: StatusSnapshot.Config {
        let s = state.withLock { $0 }
        let last = s.lastAttempt.map { StatusSnapshot.LastReload(at: iso($0), ok: s.lastError == nil, error: s.lastError) }
        return StatusSnapshot.Config(version: s.current.version, serial: s.current.serial, loadedAt: iso(s.current.loadedAt),
                                     lastReload: last)
    }

    /// `"config":{…}` for the edge's `/status`.
    package var statusJSON: String { "\"config\":" + jsonText(status, newline: false) }

    /// The version of a configuration: the first 12 hex digits of SHA-256 over the topology file's bytes and the
    /// GeoIP database's size and modification time (so replacing either one gives a new version).
    package static func version(topologyPath: String, geoPath: String?) -> String {
        var hasher = SHA256()
        hasher.update(data: FileManager.default.contents(atPath: topologyPath) ?? Data())
        if let geoPath, let attrs = try? FileManager.default.attributesOfItem(atPath: geoPath) {
            let size = (attrs[.size] as? NSNumber)?.int64Value ?? 0
            let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            hasher.update(data: Data("\(geoPath)|\(size)|\(mtime)".utf8))
        }
        return hasher.finalize().prefix(6).map { String(format: "%02x", $0) }.joined()
    }
}
