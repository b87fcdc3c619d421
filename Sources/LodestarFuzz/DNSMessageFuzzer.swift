import Foundation
import LodestarDNS
import LodestarGeo
import LodestarSelection
import LodestarGossip
import LodestarTopology

// A libFuzzer target for the DNS message decoder and the whole answer path, the gossip packet decoder, and the
// edge pass-through lane's HTTP/1.1 head reader and chunk scanner.
// Fuzzing build (libFuzzer supplies main):
//   swift build --scratch-path .build-fuzz --product lodestar-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
// Normal build: `lodestar-fuzz FILE...` replays inputs (corpus seeds or crash files) and exits 0 if none traps.
// See Fuzz/README.md.

/// A fixed zone to answer fuzzed queries against (every record type and a GSLB service).
let fuzzAuthority: Authority? = fuzzZone(signed: false)
/// The same zone signed (DNSSEC answers to queries with DO, compact denials; a key made at start).
let fuzzSignedAuthority: Authority? = fuzzZone(signed: true)

func fuzzZone(signed: Bool) -> Authority? {
    let json = """
    {"zone":{"name":"example.test","soa":{"primary":"ns1.example.test","contact":"h.example.test","serial":1},
      "nameservers":[{"name":"ns1.example.test","addresses":["127.0.0.1","::1"]}],
      "records":[{"name":"@","type":"MX","value":"10 mail.example.test."},{"name":"mail","type":"A","value":"127.0.0.25"},
        {"name":"api","type":"CNAME","value":"www.example.test."},{"name":"t","type":"TXT","value":["a","b"]},
        {"name":"sub","type":"NS","value":"ns.sub.example.test."},{"name":"ns.sub","type":"A","value":"127.0.0.53"}]},
     "regions":[{"id":"a","latitude":10,"longitude":10},{"id":"b","latitude":-10,"longitude":-10}],
     "edges":[{"id":"ea","region":"a","addresses":["127.0.1.1","2001:db8::1"]},{"id":"eb","region":"b","addresses":["127.0.2.1"]}],
     "services":{"www":{"edges":["ea","eb"],"answerCount":2,"fallbackRegion":"a","overrides":[{"prefix":"10.0.0.0/8","region":"b"}]}},
     "dns":{"nodeId":"fuzz","listen":["127.0.0.1:0"],"geoDatabase":"none","trace":"any"}}
    """
    guard let t = try? Topology.decode(Data(json.utf8), file: "fuzz") else { return nil }
    let signer = signed ? ZoneSigner(apex: DNSName("example.test")!, keys: [.init(.generate())]) : nil
    return Authority(topology: t, geo: NoGeoLocator(), health: StaticHealthView(), engine: fuzzEngine(t), signer: signer)
}

/// A compiled answer engine over a tiny database written at start, so the fast path sees the fuzzed bytes too.
func fuzzEngine(_ t: Topology) -> AnswerEngine? {
    let records = [GeoRecord(prefix: IPPrefix("10.0.0.0/8")!, latitude: 9, longitude: 9, country: "AA", continent: "EU"),
                   GeoRecord(prefix: IPPrefix("2001:db8::/32")!, latitude: -9, longitude: -9, country: "BB", continent: "AF")]
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-fuzz-\(getpid()).mmdb").path
    guard let bytes = try? MMDBWriter.build(records: records, description: "fuzz", buildEpoch: 1),
          FileManager.default.createFile(atPath: path, contents: Data(bytes)),
          let db = try? GeoDatabase(path: path) else { return nil }
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try? AnswerEngine.compile(database: db, topology: t)
}

/// The gossip key of the fuzz target.
let fuzzKeyring: GossipKeyring? = try? GossipKeyring(secrets: [Array("lodestar-fuzz-gossip-key".utf8)])

/// Gossip: the input as a raw datagram (must be refused), then signed (so the body parser behind the HMAC sees
/// hostile bytes), with a round trip for whatever decodes; the edge-state record and the replay guard too.
func fuzzGossip(_ bytes: [UInt8]) {
    guard let keyring = fuzzKeyring else { preconditionFailure("fuzz key") }
    if case .success = GossipWire.decode(bytes, keyring: keyring), bytes.count > 40 {
        // Only a packet that happens to carry a valid tag could pass; random input never does.
        precondition(GossipWire.sign(Array(bytes.dropLast(32)), keyring: keyring) == bytes, "an unauthentic packet was accepted")
    }
    var body = bytes
    if !body.isEmpty { body[0] = GossipWire.version }
    if case .success(let packet) = GossipWire.decode(GossipWire.sign(body, keyring: keyring), keyring: keyring) {
        let again = GossipWire.encode(packet.message, from: packet.sender, sequence: packet.sequence, keyring: keyring)
            .map { GossipWire.decode($0, keyring: keyring) }
        if case .success(let back)? = again { precondition(back == packet, "gossip decode → encode → decode changed the packet") }
        var replay = GossipReplayGuard(maxSkewMs: .max)
        _ = replay.check(sender: packet.sender, sequence: packet.sequence, nowMs: 0)
        precondition(replay.check(sender: packet.sender, sequence: packet.sequence, nowMs: 0) == .replay, "replay accepted")
    }
    if let drains = OperatorDrains(decoding: bytes) {
        precondition(drains.encoded().count <= OperatorDrains.maxBytes, "a drain table encoded past the metadata limit")
    }
    if let state = EdgeState(decoding: bytes) {
        precondition(EdgeState(decoding: state.encoded()) == state, "edge state round trip")
    }
}

/// Runs one input: decode (and re-encode round trip), then answer it over UDP and TCP; traps only on a real bug.
func fuzzOne(_ bytes: [UInt8]) {
    fuzzGossip(bytes)
    fuzzHTTP1(bytes)
    if let message = try? DNSMessage(decoding: bytes) {
        let again = try? DNSMessage(decoding: message.encoded())
        precondition(again == message, "decode → encode → decode changed the message")
    }
    guard let plain = fuzzAuthority, let signed = fuzzSignedAuthority else { preconditionFailure("fuzz topology does not decode") }
    for authority in [plain, signed] { fuzzAnswer(bytes, authority) }
}

/// One authority answers the input over UDP and TCP, and by the fast path.
func fuzzAnswer(_ bytes: [UInt8], _ authority: Authority) {
    var rng = FastRandom(seed: 7)
    for transport in [DNSTransport.udp, .tcp] {
        // The packet-cache key parser walks the same hostile bytes; a keyed query is always answered.
        let key = authority.answerKey(for: bytes, from: .v4(0x0A00_0001), transport: transport)
        let response = authority.respond(to: bytes, from: .v4(0x0A00_0001), transport: transport, random: &rng)
        precondition(key == nil || response != nil, "a query with a cache key was dropped")
        if let response {
            precondition((try? DNSMessage(decoding: response.bytes)) != nil, "the server built a response it cannot decode")
            if transport == .udp { precondition(response.bytes.count <= 1232, "UDP response over the payload limit") }
        }
    }
    fuzzFastPath(bytes, authority)
}

/// The fast path reads the same hostile bytes in place; whatever it answers, the full path answers alike.
func fuzzFastPath(_ bytes: [UInt8], _ authority: Authority) {
    guard let health = authority.fastHealthSnapshot() else { preconditionFailure("fuzz engine did not compile") }
    var picks: [UInt16] = []
    var out = [UInt8](repeating: 0, count: 1232)
    var r1 = FastRandom(seed: 9), r2 = FastRandom(seed: 9)
    let answer = bytes.withUnsafeBytes { packet in
        out.withUnsafeMutableBytes { o in
            authority.fastRespond(to: packet, from: .v4(0x0A00_0001), health: health, random: &r1, picks: &picks, into: o)
        }
    }
    guard let answer else { return }
    let full = authority.respond(to: bytes, from: .v4(0x0A00_0001), transport: .udp, random: &r2)
    precondition(full != nil, "the fast path answered what the full path drops")
    if answer.reusable { precondition(Array(out.prefix(answer.length)) == full?.bytes, "the fast path and the full path differ") }
}

#if FUZZING
/// libFuzzer's driver (in libclang_rt.fuzzer, linked by -sanitize=fuzzer).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// libFuzzer entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { fuzzOne([]); return 0 }
    fuzzOne(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// SwiftPM links an executable's `main` to `<module>_main`; hand control to libFuzzer's driver from there.
@_cdecl("lodestar_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in fuzzerTestOneInput(data, size) }
}
#else
/// Replays files through the fuzz target.
@main
struct FuzzReplay {
    static func main() {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("cannot read \(path)\n".utf8))
                exit(2)
            }
            fuzzOne(Array(data))
            count += 1
        }
        print("replayed \(count) inputs without a trap")
    }
}
#endif
