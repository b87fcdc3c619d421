import Crypto
import LodestarProxy
import LodestarStatusPage
import Foundation
import LodestarMetrics
import LodestarTopology
import Logging
import Metrics
import Prometheus
import Synchronization

/// The process's metrics: one Prometheus registry for every role it runs, also installed as the swift-metrics
/// backend (so metrics of libraries that use swift-metrics land on the same `/metrics`).
enum ProcessMetrics {
    private static let shared = Mutex<MetricsHub?>(nil)

    /// The process's hub (made, and swift-metrics bootstrapped with it, on first use).
    static func hub() -> MetricsHub {
        shared.withLock { hub in
            if let hub { return hub }
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            let made = MetricsHub(registry: registry)
            made.gauge("lodestar_build_info", [("version", Lodestar.version)], help: "Always 1; the version label names the build.")
                .set(to: 1.0)
            made.gauge("lodestar_process_start_time_seconds", help: "When the process started (Unix time).")
                .set(to: Date().timeIntervalSince1970)
            hub = made
            return made
        }
    }
}

/// What configuration a process runs: a version digest, when it was loaded, and how reloads went. Feeds `/status`,
/// `CH TXT config.lodestar.` and the `lodestar_config_*` metrics.
final class ConfigTracker: Sendable {
    /// One loaded configuration.
    struct Loaded: Sendable {
        var version: String
        var serial: UInt32
        var loadedAt: Date
    }

    private let state: Mutex<(current: Loaded, lastError: String?, lastAttempt: Date?)>
    private let reloads: [Prometheus.Counter]
    private let loadedAt: Prometheus.Gauge

    init(role: String, initial: Loaded, hub: MetricsHub) {
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
    var current: Loaded { state.withLock { $0.current } }


    /// Records a reload that was taken.
    func taken(_ loaded: Loaded) {
        state.withLock { $0 = (loaded, nil, Date()) }
        reloads[0].increment()
        loadedAt.set(to: loaded.loadedAt.timeIntervalSince1970)
    }

    /// Records a reload that was refused, and why.
    func refused(_ reason: String) {
        state.withLock {
            $0.lastError = reason
            $0.lastAttempt = Date()
        }
        reloads[1].increment()
    }

    /// Runs one reload (SIGHUP or the admin API): `load` reads and swaps in the new configuration, or throws and
    /// leaves the running one alone. Logs and counts the outcome; refusals name file, field and reason.
    func reload(source: String, topologyPath: String, logger: Logger,
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
    var status: StatusSnapshot.Config {
        let s = state.withLock { $0 }
        let last = s.lastAttempt.map { StatusSnapshot.LastReload(at: iso($0), ok: s.lastError == nil, error: s.lastError) }
        return StatusSnapshot.Config(version: s.current.version, serial: s.current.serial, loadedAt: iso(s.current.loadedAt),
                                     lastReload: last)
    }

    /// `"config":{…}` for the edge's `/status`.
    var statusJSON: String { "\"config\":" + jsonText(status, newline: false) }

    /// The version of a configuration: the first 12 hex digits of SHA-256 over the topology file's bytes and the
    /// GeoIP database's size and modification time (so replacing either one gives a new version).
    static func version(topologyPath: String, geoPath: String?) -> String {
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

/// RFC 3339 UTC with seconds.
func iso(_ d: Date) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: d)
}

/// A JSON string literal.
func json(_ s: String) -> String { AdminJSON.string(s) }

/// JSON of a Codable value (sorted keys), with a final newline unless `newline` is false.
func jsonText<T: Encodable>(_ value: T, newline: Bool = true) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return ((try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + (newline ? "\n" : "")
}
