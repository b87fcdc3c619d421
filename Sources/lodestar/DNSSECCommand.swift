import ArgumentParser
import Foundation
import LodestarDNS
import LodestarTopology

/// `lodestar dnssec …`: zone keys for online signing.
struct DNSSECCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dnssec",
        abstract: "DNSSEC zone keys: make one, print the DS record the parent zone publishes.",
        subcommands: [Keygen.self, DS.self])

    /// The zone name: `--zone`, else the topology's.
    static func zoneName(zone: String?, topology: String) throws -> DNSName {
        if let zone {
            guard let name = DNSName(zone) else {
                printError("--zone: \"\(zone)\" is not a domain name")
                throw ExitCode(1)
            }
            return name.lowercased
        }
        let t = try loadTopologyOrExit(topology)
        return (DNSName(t.zone.name) ?? .root).lowercased
    }

    /// `lodestar dnssec keygen`: a new key in BIND's two files.
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a zone key: K<zone>.+<alg>+<tag>.private (mode 0600) and .key, in BIND's format.")

        @Option(help: "The zone (default: the topology's zone.name).") var zone: String?
        @Option(help: "Topology file to take the zone name from.") var topology: String = "topology.json"
        @Option(help: "13 (ECDSAP256SHA256, the default) or 15 (ED25519).") var algorithm: String = "13"
        @Option(help: "Folder for the two files.") var directory: String = "."
        @Flag(help: "A zone-signing key (flags 256) rather than a combined key-signing key (257).") var zsk = false

        func run() throws {
            guard let alg = DNSSECKey.Algorithm(text: algorithm) else {
                printError("--algorithm: \"\(algorithm)\" is not 13 (ECDSAP256SHA256) or 15 (ED25519)")
                throw ExitCode(1)
            }
            let owner = try DNSSECCommand.zoneName(zone: zone, topology: topology)
            let key = DNSSECKey.generate(alg, flags: zsk ? 256 : 257)
            let stem = (directory as NSString).appendingPathComponent(key.fileStem(owner: owner))
            let privatePath = stem + ".private"
            guard FileManager.default.createFile(atPath: privatePath, contents: Data(key.privateFileText(owner: owner).utf8),
                                                 attributes: [.posixPermissions: 0o600]),
                  FileManager.default.createFile(atPath: stem + ".key", contents: Data(key.publicFileText(owner: owner).utf8)) else {
                printError("\(directory): cannot write the key files")
                throw ExitCode(1)
            }
            print("""
                \(privatePath)
                \(stem).key
                Add it to the topology:  "dns": { "dnssec": { "keys": ["\(privatePath)"] } }
                DS for the parent zone:  \(key.dsRecord(owner: owner))
                """)
        }
    }

    /// `lodestar dnssec ds`: the DS (and DNSKEY) records of the configured keys.
    struct DS: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the DS record of each zone key (the topology's dns.dnssec.keys, or --key files).")

        @Option(help: "Topology file whose dns.dnssec.keys to read.") var topology: String = "topology.json"
        @Option(name: .customLong("key"), help: "A .private key file (repeatable; instead of the topology's keys).")
        var keys: [String] = []
        @Option(help: "The zone (default: the topology's zone.name).") var zone: String?
        @Flag(help: "Print the DNSKEY records too (a trust anchor for delv or unbound).") var dnskey = false

        func run() throws {
            var files = keys
            if files.isEmpty {
                let t = try loadTopologyOrExit(topology)
                files = t.dns.dnssec?.keys.map(\.path) ?? []
                if files.isEmpty {
                    printError("\(topology): dns.dnssec.keys lists no key file (`lodestar up` prints the DS of the key it makes for a run)")
                    throw ExitCode(1)
                }
            }
            let owner = try DNSSECCommand.zoneName(zone: zone, topology: topology)
            for file in files {
                do {
                    let key = try DNSSECKey.load(privateFile: file)
                    print(key.dsRecord(owner: owner))
                    if dnskey { print(key.dnskeyRecord(owner: owner)) }
                } catch {
                    printError("\(error)")
                    throw ExitCode(1)
                }
            }
        }
    }
}
