import LodestarTopology
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The connection set-up a listener's new connections take (swapped by a reload).
final class PipelineSlot: Sendable {
    let current: Mutex<ClientPipeline>
    init(_ pipeline: ClientPipeline) { current = Mutex(pipeline) }
}

/// One bound client listener: its address, its server channel and the connection set-up its new connections take.
/// A reload swaps the set-up (new certificates, limits, protocols apply to new connections; open ones keep theirs).
final class BoundListener: Sendable {
    let address: ListenAddress
    let pipeline: PipelineSlot
    /// The server channel (a listener opened by a reload registers with its loop after the reload returned).
    let channel: EventLoopFuture<any Channel>

    init(address: ListenAddress, pipeline: PipelineSlot, channel: EventLoopFuture<any Channel>) {
        self.address = address
        self.pipeline = pipeline
        self.channel = channel
    }
}

/// What a reload does to the listeners, prepared whole before anything changes: new set-ups for kept listeners,
/// sockets already bound for added ones, and the ones to close. Dropping it unapplied closes the new sockets.
struct ListenerChange {
    var kept: [(BoundListener, ClientPipeline)] = []
    var added: [(EdgeListener, CInt, ClientPipeline)] = []
    var removed: [BoundListener] = []

    /// Closes the sockets of added listeners (the reload was refused).
    func abandon() {
        for (_, fd, _) in added { _ = close(fd) }
    }
}

/// The edge's client listeners by address: bound at start; on reload opened when added, given their new settings when
/// kept, and closed when removed (their open connections finish what they are doing, then close).
final class EdgeListeners: Sendable {
    private let bound = Mutex<[ListenAddress: BoundListener]>([:])
    private let shared: EdgeShared
    private let group: MultiThreadedEventLoopGroup
    private let loops: [ObjectIdentifier: LoopStateBox]
    private let open: ConnectionSet
    private let edgeIndex: Int

    init(shared: EdgeShared, group: MultiThreadedEventLoopGroup, loops: [ObjectIdentifier: LoopStateBox],
         open: ConnectionSet, edgeIndex: Int) {
        self.shared = shared
        self.group = group
        self.loops = loops
        self.open = open
        self.edgeIndex = edgeIndex
    }

    /// The listeners bound now.
    var all: [BoundListener] { bound.withLock { Array($0.values) } }

    /// The set-up of a listener's connections under `settings`; throws when its certificates cannot be used.
    func pipeline(for listener: EdgeListener, index j: Int, settings: ProxySettings) throws -> ClientPipeline {
        var tls: NIOSSLContext?
        if let settings = listener.tls {
            do {
                tls = try EdgeServer.makeTLSContext(settings, protocols: listener.protocols)
            } catch let e as EdgeStartError {
                throw EdgeStartError(description: "edges[\(edgeIndex)].listen[\(j)].tls: \(e.description)")
            }
        }
        return ClientPipeline(shared: shared, loops: loops, listener: listener, tls: tls, settings: settings)
    }

    /// Binds every listener at start.
    func bindAll(_ listeners: [EdgeListener]) async throws {
        for (j, listener) in listeners.enumerated() {
            let slot = PipelineSlot(try pipeline(for: listener, index: j, settings: shared.config.settings))
            let channel: any Channel
            do {
                channel = try await bootstrap(slot).bind(host: listener.address.host.description, port: listener.address.port).get()
            } catch {
                throw EdgeStartError(description: "edges[\(edgeIndex)].listen[\(j)]: cannot listen on \(listener.address): \(EdgeServer.describe(error))")
            }
            let b = BoundListener(address: listener.address, pipeline: slot, channel: channel.eventLoop.makeSucceededFuture(channel))
            bound.withLock { $0[listener.address] = b }
            log("edge listening", listener)
        }
    }

    /// Prepares a reload's listener change: certificates read and sockets of added listeners bound, so a file or
    /// address that cannot be used refuses the reload with nothing changed.
    func prepare(_ listeners: [EdgeListener], settings: ProxySettings) throws -> ListenerChange {
        let current = bound.withLock { $0 }
        var change = ListenerChange()
        do {
            for (j, listener) in listeners.enumerated() {
                let made = try pipeline(for: listener, index: j, settings: settings)
                if let b = current[listener.address] {
                    change.kept.append((b, made))
                } else {
                    do {
                        change.added.append((listener, try ListenerSocket.open(listener.address), made))
                    } catch {
                        throw EdgeStartError(description: "edges[\(edgeIndex)].listen[\(j)]: cannot listen on \(listener.address): \(error)")
                    }
                }
            }
        } catch {
            change.abandon()
            throw error
        }
        let wanted = Set(listeners.map(\.address))
        change.removed = current.values.filter { !wanted.contains($0.address) }
        return change
    }

    /// Applies a prepared change: new set-ups for kept listeners, added ones start accepting, removed ones stop and
    /// their connections are asked to finish (HTTP/2: GOAWAY; HTTP/1.1: close after the answer in progress).
    func commit(_ change: ListenerChange) {
        let renewed = change.kept.filter { $0.1.tls != nil }.count + change.added.filter { $0.2.tls != nil }.count
        shared.logger.notice("reload: listeners", metadata: [
            "kept": "\(change.kept.count)", "added": "\(change.added.count)", "removed": "\(change.removed.count)",
            "tlsCertificatesReRead": "\(renewed)"])
        for (b, made) in change.kept {
            b.pipeline.current.withLock { $0 = made }
        }
        for (listener, fd, made) in change.added {
            let slot = PipelineSlot(made)
            let future = bootstrap(slot).withBoundSocket(fd)
            bound.withLock { $0[listener.address] = BoundListener(address: listener.address, pipeline: slot, channel: future) }
            let logger = shared.logger
            future.whenComplete { result in
                switch result {
                case .success: logger.notice("reload: edge listening", metadata: ["address": "\(listener.address)"])
                case .failure(let error):
                    logger.error("reload: listener failed", metadata: ["address": "\(listener.address)", "error": "\(error)"])
                }
            }
        }
        for b in change.removed {
            bound.withLock { _ = $0.removeValue(forKey: b.address) }
            let open = self.open
            b.channel.whenSuccess { server in
                server.close(promise: nil)
                for child in open.table.withLock({ Array($0.values) }) where child.parent === server {
                    child.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
                }
            }
            shared.logger.notice("reload: listener closed", metadata: ["address": "\(b.address)"])
        }
    }

    /// Closes every listener (shutdown); open connections are the caller's.
    func closeAll() async {
        for b in bound.withLock({ l in defer { l = [:] }; return Array(l.values) }) {
            if let ch = try? await b.channel.get() { try? await ch.close() }
        }
    }

    private func log(_ message: Logger.Message, _ listener: EdgeListener) {
        shared.logger.info(message, metadata: [
            "address": "\(listener.address)", "tls": "\(listener.tls != nil)", "proxyProtocol": "\(listener.proxyProtocol)"])
    }

    /// The accept side of a listener; each new connection is set up by the slot's current pipeline.
    private func bootstrap(_ slot: PipelineSlot) -> ServerBootstrap {
        let shared = self.shared
        let limits = shared.config.settings.limits
        let openConnections = self.open
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // A client that sends its request and then shuts its sending side still gets the answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let count = shared.stats.connections.add(1, ordering: .relaxed).newValue
                    let id = ObjectIdentifier(channel)
                    openConnections.table.withLock { $0[id] = channel }
                    channel.closeFuture.whenComplete { _ in
                        shared.stats.connections.subtract(1, ordering: .relaxed)
                        openConnections.table.withLock { _ = $0.removeValue(forKey: id) }
                    }
                    if count > limits.maxConnections {
                        shared.stats.connectionsRefused.add(1, ordering: .relaxed)
                        channel.close(promise: nil)
                        return
                    }
                    try slot.current.withLock { $0 }.initialize(channel)
                }
            }
    }
}

/// A listening TCP socket made synchronously, so a reload learns at once whether an added address can be bound
/// (NIO then takes the descriptor over with `withBoundSocket`).
enum ListenerSocket {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func open(_ address: ListenAddress) throws -> CInt {
        let socketAddress = try SocketAddress(ipAddress: address.host.description, port: address.port)
        let family = socketAddress.protocol == .inet6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: String(cString: strerror(errno))) }
        var one: CInt = 1
        let failed: Bool = socketAddress.withSockAddr { pointer, size in
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) != 0
                || bind(fd, pointer, socklen_t(size)) != 0 || listen(fd, 1024) != 0
        }
        if failed {
            let reason = String(cString: strerror(errno))
            _ = close(fd)
            throw Failure(description: reason)
        }
        return fd
    }
}
