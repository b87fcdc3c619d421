import ArgumentParser

/// The `lodestar` command: a GSLB system's DNS tier and tools.
@main
struct Lodestar: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "lodestar",
        abstract: "Lodestar GSLB: sends every user to the nearest healthy edge.",
        version: version,
        subcommands: [UpCommand.self, DNSCommand.self, EdgeCommand.self, OriginCommand.self, CtlCommand.self, CheckCommand.self, GeoCommand.self, DNSSECCommand.self,
                      VersionCommand.self]
    )
}

/// `lodestar version`.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print("lodestar \(Lodestar.version)")
    }
}
