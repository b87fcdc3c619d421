import ArgumentParser
import LodestarLogging
import Logging

/// `--log-level` and `--log-format`, shared by the long-running commands.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Log line format: logfmt, json or text (one line per event on standard error).")
    var logFormat: String = "logfmt"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level \(logLevel): use trace, debug, info, notice, warning, error or critical")
        }
        guard LogFormat(rawValue: logFormat) != nil else {
            throw ValidationError("--log-format \(logFormat): use logfmt, json or text")
        }
    }

    /// Installs the structured log handler for the whole process (once).
    func bootstrap() {
        LodestarLogging.bootstrap(format: LogFormat(rawValue: logFormat) ?? .logfmt, level: level)
    }

    /// The chosen level.
    var level: Logger.Level { Logger.Level(rawValue: logLevel) ?? .info }

    /// A logger with the chosen level.
    func logger(_ label: String) -> Logger {
        var l = Logger(label: label)
        l.logLevel = level
        return l
    }
}
