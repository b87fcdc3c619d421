import ArgumentParser
import Foundation
import LodestarGeo
import LodestarSelection
import LodestarTopology

/// `lodestar geo …`: GeoIP database tools.
struct GeoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "geo",
        abstract: "GeoIP database tools.",
        subcommands: [Compile.self, Lookup.self, Inspect.self])

    /// `lodestar geo compile CSV OUT.mmdb`.
    struct Compile: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compile CIDR,latitude,longitude,country,continent[,city] rows into a MaxMind DB (.mmdb).")

        @Argument(help: "Source CSV.") var csv: String
        @Argument(help: "Output .mmdb.") var output: String
        @Option(help: "build_epoch written into the metadata (default: $SOURCE_DATE_EPOCH, else now). `make geo` passes the sample's fixed epoch so the committed file rebuilds byte for byte.")
        var buildEpoch: UInt64?

        func run() throws {
            guard let data = FileManager.default.contents(atPath: csv) else {
                printError("\(csv): cannot read file")
                throw ExitCode(1)
            }
            let records: [GeoRecord]
            do {
                records = try GeoCSV.parse(String(decoding: data, as: UTF8.self), file: csv)
            } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
            let epoch = buildEpoch
                ?? ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap { UInt64($0) }
                ?? UInt64(Date().timeIntervalSince1970)
            let bytes = try MMDBWriter.build(records: records, databaseType: "Lodestar-City",
                                             description: "Lodestar GeoIP database compiled from \((csv as NSString).lastPathComponent)",
                                             buildEpoch: epoch)
            try Data(bytes).write(to: URL(fileURLWithPath: output), options: .atomic)
            print("\(output): \(records.count) networks, \(bytes.count) bytes")
        }

    }

    /// `lodestar geo lookup IP`.
    struct Lookup: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what the GeoIP database says of an address or subnet, and which edge of each service would answer.")

        @Argument(help: "An address (8.8.8.8) or subnet (81.2.69.0/24) as in an ECS option.") var address: String
        @Option(help: "Topology file.") var topology: String = "topology.json"
        @Option(help: "GeoIP .mmdb (default: the topology's dns.geoDatabase).") var geo: String?

        func run() throws {
            guard let prefix = IPPrefix(address) else {
                printError("\(address): not an IP address or CIDR subnet")
                throw ExitCode(1)
            }
            let t = try loadTopologyOrExit(topology)
            let path = geo ?? t.dns.geoDatabase
            let db: GeoDatabase
            do { db = try GeoDatabase(path: path) } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
            let client = prefix.address
            let result = db.lookup(client)
            print("address:    \(prefix)")
            print("database:   \(path)")
            print("network:    \(client.masked(to: result.prefixLength))/\(result.prefixLength)")
            if let loc = result.location {
                print("location:   \(loc.latitude), \(loc.longitude)")
                print("country:    \(loc.country ?? "-")   continent: \(loc.continent ?? "-")   city: \(loc.city ?? "-")")
            } else {
                print("location:   unknown")
            }
            let selector = EdgeSelector(topology: t)
            var rng = SystemRandomNumberGenerator()
            for service in t.services {
                let family: EdgeSelector.Family = client.isIPv4 ? .v4 : .v6
                var sel = selector.select(service: service, client: client, geo: result, family: family,
                                          health: StaticHealthView(), random: &rng)
                if sel.chosen.isEmpty {
                    sel = selector.select(service: service, client: client, geo: result, family: family == .v4 ? .v6 : .v4,
                                          health: StaticHealthView(), random: &rng)
                }
                print("service \(service.fqdn): \(describe(sel.reason))")
                for r in sel.ranked {
                    let mark = sel.chosen.contains(r.edge) ? "→" : " "
                    print("  \(mark) \(r.edge.id) (\(r.edge.region)) \(Int(r.distanceKm.rounded())) km  "
                          + r.edge.addresses.map(\.description).joined(separator: " "))
                }
                print("  ECS scope: /\(min(sel.scopePrefixLength, prefix.length))")
            }
        }

        private func describe(_ reason: PlacementReason) -> String {
            switch reason {
            case .override(let p, let region): return "override \(p) → \(region)"
            case .geo(let loc): return "nearest to \(loc.country ?? "?")/\(loc.continent ?? "?") (\(loc.latitude), \(loc.longitude))"
            case .fallback(let region): return "unknown location → fallback region \(region)"
            case .unlocated: return "unknown location, no fallback region → configuration order"
            }
        }
    }

    /// `lodestar geo inspect DB`.
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a .mmdb file's metadata.")

        @Argument(help: "The .mmdb file.") var database: String

        func run() throws {
            let db: GeoDatabase
            do { db = try GeoDatabase(path: database) } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
            let m = db.metadata
            print("file:          \(database)")
            print("database_type: \(m.databaseType)")
            print("description:   \(m.description)")
            print("ip_version:    \(m.ipVersion)")
            print("record_size:   \(m.recordSize)")
            print("node_count:    \(m.nodeCount)")
            print("build_epoch:   \(m.buildEpoch) (\(Date(timeIntervalSince1970: TimeInterval(m.buildEpoch))))")
        }
    }
}
