import Foundation
import LodestarGossip
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Counters of a gossip node (read from any thread).
public final class GossipStats: Sendable {
    /// Datagrams received and accepted (authentic, fresh, decodable).
    public let packetsIn = Atomic<Int>(0)
    /// Datagrams sent.
    public let packetsOut = Atomic<Int>(0)
    /// Bytes received (all datagrams) and sent.
    public let bytesIn = Atomic<Int>(0)
    public let bytesOut = Atomic<Int>(0)
    /// Messages not sent: too large for a packet, or no address known for the target.
    public let unsent = Atomic<Int>(0)
    /// Direct probes (pings) and indirect probe requests sent.
    public let probes = Atomic<Int>(0)
    public let indirectProbes = Atomic<Int>(0)
    /// Members this node has seen become suspect.
    public let suspicions = Atomic<Int>(0)
    /// Times a send error closed the socket and the node opened it again.
    public let socketReopens = Atomic<Int>(0)
    private let drops = Mutex<[GossipDropReason: Int]>([:])

    /// Counts a dropped datagram.
    func drop(_ reason: GossipDropReason) { drops.withLock { $0[reason, default: 0] += 1 } }

    /// Dropped datagrams by reason.
    public var dropped: [GossipDropReason: Int] { drops.withLock { $0 } }
    /// All dropped datagrams.
    public var droppedTotal: Int { drops.withLock { $0.values.reduce(0, +) } }
}

/// One member of the gossip cluster on a UDP socket: drives a `SWIMInstance` with real time, authenticates every
/// datagram (HMAC, replay window, clock skew) before it can touch membership, and reports changes. All protocol
/// state lives on one event loop.
public final class GossipNode: @unchecked Sendable {
    /// This node's id.
    public let myself: SWIMNodeID
    /// Counters.
    public let stats = GossipStats()
    private let loop: any EventLoop
    private let listen: SocketAddress
    private let keyring: GossipKeyring
    private let logger: Logger
    private let tickEvery: TimeAmount
    private let snapshot = Mutex<[SWIMMember]>([])
    private let heard = Mutex<[SWIMNodeID: NIODeadline]>([:])
    private let changeHandler: @Sendable ([SWIMMember]) -> Void

    // Event-loop confined.
    private var instance: SWIMInstance
    private var addresses: [SWIMNodeID: SocketAddress] = [:]
    private var sequence = GossipSequence()
    private var replay = GossipReplayGuard()
    private var rng = SystemRandomNumberGenerator()
    private var channel: (any Channel)?
    private var ticker: RepeatedTask?

    /// A node that will listen on `listen`; `onChange` gets the full member list (this node included) on the node's
    /// event loop after every status or payload change.
    public init(myself: SWIMNodeID, listen: SocketAddress, keyring: GossipKeyring, settings: SWIMSettings = SWIMSettings(),
                seeds: [SWIMNodeID] = [], group: any EventLoopGroup, logger: Logger,
                onChange: @escaping @Sendable ([SWIMMember]) -> Void = { _ in }) {
        self.myself = myself
        self.listen = listen
        self.keyring = keyring
        self.logger = logger
        self.loop = group.next()
        self.changeHandler = onChange
        self.tickEvery = .milliseconds(max(10, Int64(settings.probeInterval.components.seconds * 1000
            + settings.probeInterval.components.attoseconds / 1_000_000_000_000_000) / 10))
        self.instance = SWIMInstance(settings: settings, myself: myself, seeds: seeds, now: Self.now())
    }

    /// Monotonic time as the SWIM core counts it.
    static func now() -> Duration { .nanoseconds(Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)) }

    /// Wall-clock milliseconds (carried in sequence numbers, so peers can bound replays across restarts).
    static func wallMilliseconds() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }

    /// Binds the UDP socket and starts the protocol timer; returns the bound address (a port of 0 picks one).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let ch = try await bind(listen).get()
        let bound = ch.localAddress ?? listen
        try await loop.submit { [self] in
            boundAddress = bound
            adopt(ch)
            ticker = loop.scheduleRepeatedTask(initialDelay: tickEvery, delay: tickEvery) { [self] _ in tick() }
            publishSnapshot()
        }.get()
        logger.info("gossip listening", metadata: ["node": "\(myself)", "address": "\(bound)"])
        return bound
    }

    private func bind(_ address: SocketAddress) -> EventLoopFuture<any Channel> {
        DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(GossipDatagramHandler(node: self))
                }
            }
            .bind(to: address)
    }

    /// Makes `ch` the node's socket and watches it: NIO closes a datagram channel on a send error other than
    /// EHOSTUNREACH or EMSGSIZE — ENETUNREACH when a route to one peer is withdrawn, EPERM from a firewall — which
    /// would leave the node deaf and mute for good. Such a close reopens the socket on the same address.
    private func adopt(_ ch: any Channel) {
        channel = ch
        socketGeneration += 1
        ch.closeFuture.whenComplete { [self] _ in
            loop.execute { [self] in
                guard let current = channel, current === ch, ticker != nil else { return }  // stop() closed it
                channel = nil
                reopen(boundAddress ?? listen, attempt: 1)
            }
        }
    }

    private func reopen(_ address: SocketAddress, attempt: Int) {
        let why = lastSocketError.map { "\($0)" } ?? "closed"
        bind(address).whenComplete { [self] result in
            loop.execute { [self] in
                guard ticker != nil else {  // stopped meanwhile
                    if case .success(let ch) = result { ch.close(promise: nil) }
                    return
                }
                switch result {
                case .success(let ch):
                    stats.socketReopens.add(1, ordering: .relaxed)
                    reopensUnlogged += 1
                    // One line per 10 s at most: a peer whose route is gone fails every send to it.
                    if lastReopenLog.map({ .now() - $0 >= .seconds(10) }) ?? true {
                        logger.warning("gossip socket reopened after an error closed it", metadata: [
                            "node": "\(myself)", "address": "\(address)", "error": "\(why)", "times": "\(reopensUnlogged)"])
                        lastReopenLog = .now()
                        reopensUnlogged = 0
                    }
                    adopt(ch)
                case .failure(let error):
                    logger.error("gossip socket could not be reopened; retrying", metadata: [
                        "node": "\(myself)", "address": "\(address)", "error": "\(error)", "attempt": "\(attempt)"])
                    loop.scheduleTask(in: .milliseconds(Int64(min(attempt, 10)) * 100)) { [self] in
                        if ticker != nil, channel == nil { reopen(address, attempt: attempt + 1) }
                    }
                }
            }
        }
    }

    /// Addresses a send failed to (no route, a firewall): for a while datagrams to them are dropped here, as a lossy
    /// network would drop them, rather than written — such an error closes the socket, and each close (and reopen)
    /// loses the other peers' packets too. The pause doubles with each failure in a row (1 s, then 2 s) and ends when
    /// an authenticated datagram arrives from the address. Event-loop confined.
    private var unreachable: [SocketAddress: (until: NIODeadline, pause: Int64)] = [:]
    /// The last error the socket reported (on the event loop), named when an error closes it.
    fileprivate var lastSocketError: (any Error)?
    private var lastReopenLog: NIODeadline?
    /// The address the socket was bound to (with the port picked for a port of 0), reused when reopening.
    private var boundAddress: SocketAddress?
    private var reopensUnlogged = 0
    /// Counts the sockets the node has had; the one whose fatal send error has been blamed on its address (see
    /// `writeFailed`).
    private var socketGeneration = 0
    private var blamedSocket: Int?

    /// Learns peers' addresses and asks them for a full-state exchange (SWIM join through seeds).
    public func join(peers: [SWIMNodeID: SocketAddress]) {
        loop.execute { [self] in
            for (id, address) in peers where id != myself { addresses[id] = address }
            run(instance.join(contacts: Array(peers.keys).filter { $0 != myself }.sorted(), now: Self.now(), rng: &rng))
        }
    }

    /// Publishes a new payload (e.g. an encoded `EdgeState`), spread with the next messages; with `announce`, also
    /// pinged at once to up to 16 live members (for changes the DNS tier must see now, like a drain).
    /// `directTo` members (an edge's DNS nodes) get it at once in a message of its own, whatever else is gossiped.
    public func publish(_ bytes: [UInt8], announce: Bool = false, directTo: [SWIMNodeID] = []) {
        loop.execute { [self] in
            if announce {
                run(instance.updateMetadataAndAnnounce(bytes, fanout: 16, rng: &rng))
            } else {
                instance.updateMetadata(bytes)
            }
            if !directTo.isEmpty {
                run(instance.sendPayload(to: directTo))
            }
            publishSnapshot()
        }
    }

    /// Announces a graceful leave, lets it go out for `linger`, then stops.
    public func leave(linger: TimeAmount = .milliseconds(300)) async {
        try? await loop.submit { [self] in
            run(instance.leave(now: Self.now(), rng: &rng))
        }.get()
        try? await Task.sleep(nanoseconds: UInt64(max(0, linger.nanoseconds)))
        await stop()
    }

    /// Stops at once (no leave message): the others will find out by probing.
    public func stop() async {
        let ch = try? await loop.submit { [self] () -> (any Channel)? in
            ticker?.cancel()
            ticker = nil
            defer { channel = nil }
            return channel
        }.get()
        if let ch = ch ?? nil { try? await ch.close() }
    }

    /// The members as this node last saw them (itself included).
    public var members: [SWIMMember] { snapshot.withLock { $0 } }

    /// When an authentic packet from each member last arrived (monotonic).
    public var lastHeard: [SWIMNodeID: NIODeadline] { heard.withLock { $0 } }

    // MARK: Event loop

    private func tick() {
        run(instance.onTick(now: Self.now(), rng: &rng))
    }

    /// A datagram arrived: size, version, tag, replay and skew checks first; only then may it reach the SWIM core.
    fileprivate func receive(_ envelope: AddressedEnvelope<ByteBuffer>) {
        var buffer = envelope.data
        stats.bytesIn.add(buffer.readableBytes, ordering: .relaxed)
        guard buffer.readableBytes <= GossipWire.maxPacketBytes, let bytes = buffer.readBytes(length: buffer.readableBytes) else {
            return stats.drop(.size)
        }
        let packet: GossipPacket
        switch GossipWire.decode(bytes, keyring: keyring) {
        case .failure(let reason): return stats.drop(reason)
        case .success(let p): packet = p
        }
        if let reason = replay.check(sender: packet.sender, sequence: packet.sequence, nowMs: Self.wallMilliseconds()) {
            return stats.drop(reason)
        }
        guard packet.sender != myself else { return stats.drop(.malformed) }
        stats.packetsIn.add(1, ordering: .relaxed)
        addresses[packet.sender] = envelope.remoteAddress  // authenticated: the sender holds a key
        if !unreachable.isEmpty { unreachable[envelope.remoteAddress] = nil }
        heard.withLock { $0[packet.sender] = .now() }
        run(instance.onMessage(packet.message, from: packet.sender, now: Self.now(), rng: &rng))
    }

    /// Carries out the SWIM core's directives.
    private func run(_ directives: [SWIMDirective]) {
        var changed = false
        for d in directives {
            switch d {
            case .send(let message, let to):
                send(message, to: to)
            case .statusChanged(let change):
                changed = true
                if change.current == .suspect { stats.suspicions.add(1, ordering: .relaxed) }
                logger.notice("gossip member \(change.current)", metadata: [
                    "node": "\(myself)", "member": "\(change.node)",
                    "was": "\(change.previous.map { "\($0)" } ?? "unknown")", "incarnation": "\(change.incarnation)"])
            case .metadataChanged:
                changed = true
            }
        }
        if changed { publishSnapshot() }
    }

    private func send(_ message: SWIMMessage, to target: SWIMNodeID) {
        guard let channel, let address = addresses[target] else {
            stats.unsent.add(1, ordering: .relaxed)
            return
        }
        if let mark = unreachable[address], mark.until > .now() {
            stats.unsent.add(1, ordering: .relaxed)
            return
        }
        if case .v6 = address, case .v4 = boundAddress {
            stats.unsent.add(1, ordering: .relaxed)  // cannot leave an IPv4 socket; NIO would close it on EAFNOSUPPORT
            return
        }
        // A full-state sync of a large cluster does not fit one datagram: it goes as several.
        let packets = GossipWire.encodeAll(message, from: myself, keyring: keyring) {
            sequence.next(nowMs: Self.wallMilliseconds())
        }
        if packets.isEmpty { stats.unsent.add(1, ordering: .relaxed) }
        switch message.kind {
        case .ping: stats.probes.add(1, ordering: .relaxed)
        case .pingRequest: stats.indirectProbes.add(1, ordering: .relaxed)
        default: break
        }
        for bytes in packets {
            stats.packetsOut.add(1, ordering: .relaxed)
            stats.bytesOut.add(bytes.count, ordering: .relaxed)
            let written = channel.eventLoop.makePromise(of: Void.self)
            let socket = socketGeneration
            written.futureResult.whenFailure { [self] error in
                writeFailed(error, to: address, on: socket)
            }
            channel.write(AddressedEnvelope(remoteAddress: address, data: channel.allocator.buffer(bytes: bytes)), promise: written)
        }
        channel.flush()
    }

    /// Marks the address of a failed send unreachable. An error NIO survives (EHOSTUNREACH) fails that write alone;
    /// a fatal one closes the socket and fails every pending write with the same error, the culprit first — so only
    /// the first fatal failure on a socket is blamed, not the peers whose datagrams were queued behind it.
    private func writeFailed(_ error: any Error, to address: SocketAddress, on socket: Int) {
        switch error {
        case ChannelError.ioOnClosedChannel, ChannelError.writeMessageTooLarge:
            return
        case ChannelError.writeHostUnreachable:
            break
        default:
            lastSocketError = error  // kept to name it when the node reopens the socket
            guard blamedSocket != socket else { return }
            blamedSocket = socket
        }
        let now = NIODeadline.now()
        if unreachable.count >= 4096 { unreachable = unreachable.filter { $0.value.until > now } }  // bounded
        let pause = unreachable[address].map { min(2, $0.pause * 2) } ?? 1
        unreachable[address] = (now + .seconds(pause), pause)
    }

    private func publishSnapshot() {
        var list = instance.members
        if !list.contains(where: { $0.node == myself }) {
            list.append(SWIMMember(node: myself, status: .alive, incarnation: 0))
        }
        snapshot.withLock { $0 = list }
        changeHandler(list)
    }
}

/// Hands datagrams to the node (on the node's event loop).
private final class GossipDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let node: GossipNode

    init(node: GossipNode) { self.node = node }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        node.receive(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable and friends surface here for UDP: a peer is down, which probing will find out. An
        // error that closes the socket is named when the node reopens it.
        node.lastSocketError = error
    }
}
