import Foundation
import LodestarDNS
import LodestarGeo
import LodestarSelection
import LodestarTopology
import XCTest

/// A GeoIP stand-in: a table of networks, most specific first, like a tiny MaxMind tree.
struct TableLocator: GeoLocator {
    var rows: [(IPPrefix, GeoLocation)]
    /// Prefix length reported for addresses in no row (the empty network around them).
    var unknownPrefixLength = 8

    func lookup(_ address: IPAddress) -> GeoLookup {
        for (p, loc) in rows.sorted(by: { $0.0.length > $1.0.length }) where p.contains(address) {
            return GeoLookup(location: loc, prefixLength: p.length)
        }
        return GeoLookup(location: nil, prefixLength: min(unknownPrefixLength, address.bitWidth))
    }

    static let sample = TableLocator(rows: [
        (IPPrefix("81.2.69.0/24")!, GeoLocation(latitude: 51.51, longitude: -0.13, country: "GB", continent: "EU")),
        (IPPrefix("85.214.0.0/16")!, GeoLocation(latitude: 52.52, longitude: 13.40, country: "DE", continent: "EU")),
        (IPPrefix("8.8.8.0/24")!, GeoLocation(latitude: 37.39, longitude: -122.08, country: "US", continent: "NA")),
        (IPPrefix("133.0.0.0/8")!, GeoLocation(latitude: 35.68, longitude: 139.69, country: "JP", continent: "AS")),
        (IPPrefix("127.0.2.0/24")!, GeoLocation(latitude: 50.11, longitude: 8.68, country: "DE", continent: "EU")),
        (IPPrefix("2a00:1450::/29")!, GeoLocation(latitude: 53.35, longitude: -6.26, country: "IE", continent: "EU")),
    ])
}

/// Builds topologies, queries and answers for tests.
enum Fixture {
    static let topologyJSON = """
    {
      "zone": {
        "name": "example.test",
        "soa": { "primary": "ns1.example.test", "contact": "hostmaster.example.test", "serial": 7, "minimum": 60, "ttl": 3600 },
        "nameservers": [ { "name": "ns1.example.test", "addresses": ["127.0.0.1", "::1"] } ],
        "records": [
          { "name": "@", "type": "TXT", "value": "hello" },
          { "name": "@", "type": "MX", "value": "10 mail.example.test." },
          { "name": "mail", "type": "A", "ttl": 3600, "value": "127.0.0.25" },
          { "name": "api", "type": "CNAME", "value": "www.example.test." },
          { "name": "away", "type": "CNAME", "value": "www.example.com." },
          { "name": "a.b", "type": "A", "value": "127.0.0.40" },
          { "name": "sub", "type": "NS", "value": "ns.sub.example.test." },
          { "name": "ns.sub", "type": "A", "value": "127.0.0.53" },
          { "name": "big", "type": "TXT", "value": ["\(String(repeating: "a", count: 255))", "\(String(repeating: "b", count: 255))", "\(String(repeating: "c", count: 255))"] }
        ]
      },
      "regions": [
        { "id": "us-east", "latitude": 39.04, "longitude": -77.49 },
        { "id": "eu-central", "latitude": 50.11, "longitude": 8.68 },
        { "id": "ap-southeast", "latitude": 1.35, "longitude": 103.82 }
      ],
      "edges": [
        { "id": "edge-us", "region": "us-east", "addresses": ["127.0.1.1", "2001:db8:1::1"] },
        { "id": "edge-eu", "region": "eu-central", "addresses": ["127.0.2.1"] },
        { "id": "edge-ap", "region": "ap-southeast", "addresses": ["127.0.3.1", "2001:db8:3::1"] }
      ],
      "services": {
        "www": { "edges": ["edge-us", "edge-eu", "edge-ap"], "ttl": 30, "fallbackRegion": "us-east",
                 "overrides": [ { "prefix": "85.214.7.0/24", "region": "ap-southeast" } ] },
        "two": { "edges": ["edge-us", "edge-eu", "edge-ap"], "answerCount": 2 },
        "closed": { "edges": ["edge-eu"], "failClosed": true }
      },
      "dns": { "nodeId": "test-node", "listen": ["127.0.0.1:0"], "geoDatabase": "unused.mmdb" }
    }
    """

    static func topology() throws -> Topology {
        try Topology.decode(Data(topologyJSON.utf8), file: "fixture.json")
    }

    static func authority(down: Set<String> = [], geo: any GeoLocator = TableLocator.sample) throws -> Authority {
        Authority(topology: try topology(), geo: geo, health: StaticHealthView(down: down))
    }

    /// A query message with optional EDNS (payload, version, options).
    static func query(_ name: String, _ type: UInt16 = RRType.a, qclass: UInt16 = RRClass.in, id: UInt16 = 0x1234,
                      edns: (payload: UInt16, version: UInt8, options: [EDNSOption])? = (1232, 0, [])) -> [UInt8] {
        var h = DNSHeader()
        h.id = id
        h.recursionDesired = true
        var m = DNSMessage(header: h, questions: [DNSQuestion(name: DNSName(name)!, type: type, qclass: qclass)])
        if let e = edns {
            m.additional.append(ResourceRecord(name: .root, type: RRType.opt, rclass: e.payload, ttl: UInt32(e.version) << 16, rdata: .opt(e.options)))
        }
        return m.encoded()
    }

    static func ecs(_ cidr: String, scope: UInt8 = 0) -> EDNSOption {
        let p = IPPrefix(cidr)!
        let bytes = p.address.bytes.prefix((p.length + 7) / 8)
        return EDNSOption(code: EDNSOptionCode.clientSubnet,
                          data: [0, p.address.isIPv4 ? 1 : 2, UInt8(p.length), scope] + bytes)
    }

    /// Asks `authority` and decodes the reply.
    static func ask(_ authority: Authority, _ packet: [UInt8], from client: String = "127.0.0.1",
                    transport: DNSTransport = .udp, file: StaticString = #filePath, line: UInt = #line) throws -> DNSMessage {
        var rng = FastRandom(seed: 42)
        let response = try XCTUnwrap(authority.respond(to: packet, from: IPAddress(client)!, transport: transport, random: &rng),
                                     "query was dropped", file: file, line: line)
        return try DNSMessage(decoding: response.bytes)
    }

    /// Loads a hex fixture captured from dig (first line: the command).
    static func digFixture(_ name: String) throws -> [UInt8] {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "hex"))
        let text = try String(contentsOf: url, encoding: .utf8)
        let hex = text.split(separator: "\n").first { !$0.hasPrefix("#") } ?? ""
        var bytes = [UInt8]()
        var i = hex.startIndex
        while i < hex.endIndex, let j = hex.index(i, offsetBy: 2, limitedBy: hex.endIndex) {
            bytes.append(try XCTUnwrap(UInt8(hex[i..<j], radix: 16)))
            i = j
        }
        return bytes
    }
}

extension DNSMessage {
    /// The ECS option of the reply's OPT, if any.
    var clientSubnet: ClientSubnet? {
        guard case .opt(let options)? = opt?.rdata, let o = options.first(where: { $0.code == EDNSOptionCode.clientSubnet }) else { return nil }
        var d = o.data
        let scope = d.count > 3 ? d[3] : 0
        if d.count > 3 { d[3] = 0 }
        var c = ClientSubnet(optionData: d)
        c?.scopePrefixLength = Int(scope)
        return c
    }

    /// A records' addresses in the answer section, as text.
    var answerAddresses: [String] {
        answers.compactMap { rr in
            switch rr.rdata {
            case .a(let v): return IPAddress.v4(v).description
            case .aaaa(let b): return IPAddress(bytes: b)?.description
            default: return nil
            }
        }
    }
}
