// The two relay modes of h2floor: the least a proxy spends per request when it parses nothing and relays the bytes
// of each client connection to an upstream connection of its own (opened when the client connects) and back.
//   relay  on SwiftNIO: one channel per side, each read written and flushed on the other side's context;
//   epoll  a hand-written epoll loop (level-triggered, one 64 KiB buffer, blocking writes of what was read).
import CEpoll
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// One side of a NIO relay: what it reads is written to its peer (held until the peer's channel is active).
final class RelaySide: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var context: ChannelHandlerContext?
    var peer: RelaySide?
    private var held: [ByteBuffer] = []

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelActive(context: ChannelHandlerContext) {
        for bytes in held { context.write(wrapOutboundOut(bytes), promise: nil) }
        if !held.isEmpty { context.flush() }
        held = []
    }

    func send(_ bytes: ByteBuffer) {
        if let context, context.channel.isActive {
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        } else {
            held.append(bytes)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { peer?.send(unwrapInboundIn(data)) }

    func channelInactive(context: ChannelHandlerContext) {
        peer?.context?.close(promise: nil)
        peer = nil
    }
}

/// Serves the NIO relay on `port`, each client relayed to 127.0.0.1:`origin`.
func runNIORelay(port: Int, origin: Int) throws -> Never {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let upstream = try SocketAddress(ipAddress: "127.0.0.1", port: origin)
    let server = try ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            let client = RelaySide(), origin = RelaySide()
            client.peer = origin
            origin.peer = client
            _ = ClientBootstrap(group: channel.eventLoop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { upstream in
                    upstream.eventLoop.makeCompletedFuture { try upstream.pipeline.syncOperations.addHandler(origin) }
                }
                .connect(to: upstream)
            return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(client) }
        }
        .bind(host: "127.0.0.1", port: port).wait()
    print("h2floor relay on 127.0.0.1:\(port) to \(origin)")
    try server.closeFuture.wait()
    exit(0)
}

/// Serves the hand-written epoll relay on `port`, each client relayed to 127.0.0.1:`origin`.
func runEpollRelay(port: Int, origin: Int) -> Never {
    func loopback(_ port: Int) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = UInt16(truncatingIfNeeded: port).bigEndian
        a.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return a
    }
    func withAddress<T>(_ port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var a = loopback(port)
        return withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
    var one: Int32 = 1
    func nonBlocking(_ fd: Int32) { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    func noDelay(_ fd: Int32) { setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4) }
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, 4)
    guard withAddress(port, { bind(listener, $0, $1) }) == 0, listen(listener, 4096) == 0 else {
        print("h2floor epoll: cannot listen on 127.0.0.1:\(port)")
        exit(1)
    }
    nonBlocking(listener)
    let poll = epoll_create1(0)
    func watch(_ fd: Int32) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = fd
        epoll_ctl(poll, EPOLL_CTL_ADD, fd, &event)
    }
    watch(listener)
    var peer = [Int32: Int32]()
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 64)
    var events = [epoll_event](repeating: epoll_event(), count: 256)
    print("h2floor epoll on 127.0.0.1:\(port) to \(origin)")
    while true {
        let ready = Int(epoll_wait(poll, &events, 256, -1))
        for i in 0..<max(0, ready) {
            let fd = events[i].data.fd
            if fd == listener {
                while case let client = accept(listener, nil, nil), client >= 0 {
                    let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                    guard withAddress(origin, { connect(upstream, $0, $1) }) == 0 else {
                        close(client)
                        close(upstream)
                        continue
                    }
                    for side in [client, upstream] {
                        noDelay(side)
                        nonBlocking(side)
                        watch(side)
                    }
                    peer[client] = upstream
                    peer[upstream] = client
                }
                continue
            }
            guard let other = peer[fd] else { continue }
            let count = read(fd, buffer, 65536)
            if count < 0 && errno == EAGAIN { continue }
            if count <= 0 {
                close(fd)
                close(other)
                peer[fd] = nil
                peer[other] = nil
                continue
            }
            var sent = 0
            while sent < count {
                let n = write(other, buffer + sent, count - sent)
                if n > 0 { sent += n } else if n < 0 && errno == EAGAIN { continue } else { break }
            }
        }
    }
}
