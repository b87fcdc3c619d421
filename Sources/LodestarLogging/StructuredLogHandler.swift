import Foundation
import Logging
import Synchronization

/// How a `StructuredLogHandler` renders each event.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `ts=… level=… logger=… msg=… key=value…`, keys after `msg` sorted.
    case logfmt
    /// One compact JSON object per line with keys `ts`, `level`, `logger`, `msg`, then the metadata keys sorted.
    case json
    /// The look of swift-log's `StreamLogHandler`: `2026-11-25T19:44:00+0000 info label: key=value [source] message` (UTC).
    case text
}

/// A swift-log `LogHandler` that writes one line per event (logfmt, JSON or text) to a `LogOutput`, stderr by default.
///
/// Metadata precedence, lowest to highest: the handler's `metadata`, its `metadataProvider`, the call's metadata,
/// then `error.message` / `error.type` when the call passes an error.
public struct StructuredLogHandler: LogHandler {
    /// The logger label, printed as `logger`.
    public let label: String
    /// The line format.
    public let format: LogFormat
    /// Minimum level logged (`Logger` does the filtering); `.info` by default.
    public var logLevel: Logger.Level = .info
    /// Handler metadata, merged under the per-call metadata.
    public var metadata: Logger.Metadata = [:]
    /// Contextual metadata provider, merged between the handler's metadata and the per-call metadata.
    public var metadataProvider: Logger.MetadataProvider?

    private let output: LogOutput
    private let clock: @Sendable () -> Date

    /// A handler for `label` writing `format` lines to `output`, stamping each with `clock()`.
    public init(
        label: String, format: LogFormat, output: LogOutput = .standardError,
        clock: @escaping @Sendable () -> Date = Date.init
    ) {
        self.label = label
        self.format = format
        self.output = output
        self.clock = clock
    }

    /// One handler metadata value.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Renders the event as one line and writes it.
    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, provided in provided }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { _, explicit in explicit }
        }
        if let error = event.error {
            merged["error.message"] = .string(String(describing: error))
            merged["error.type"] = .string(String(reflecting: type(of: error)))
        }
        let line = LineRenderer.render(
            format: format,
            secondsSince1970: clock().timeIntervalSince1970,
            level: event.level,
            label: label,
            message: event.message.description,
            source: event.source,
            metadata: merged
        )
        output.write(line)
    }
}

/// Process-wide setup of swift-log for Lodestar.
public enum LodestarLogging {
    private static let bootstrapped = Atomic<Bool>(false)

    /// Bootstraps `LoggingSystem` with `StructuredLogHandler`s on stderr at `level`; later calls are ignored.
    ///
    /// swift-log allows one bootstrap per process: do not also call `LoggingSystem.bootstrap` elsewhere.
    public static func bootstrap(format: LogFormat, level: Logger.Level) {
        guard bootstrapped.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        LoggingSystem.bootstrap(
            { label, provider in
                var handler = StructuredLogHandler(label: label, format: format)
                handler.logLevel = level
                handler.metadataProvider = provider
                return handler
            },
            metadataProvider: nil
        )
    }
}
