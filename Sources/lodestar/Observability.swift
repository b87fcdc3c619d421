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
