import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// A minimal socket client and DNS packet builder, independent of the server's own codec,
// for what dig cannot send: junk, pipelined TCP, odd opcodes, idle connections.

enum SocketType {
    #if canImport(Glibc)
    static let datagram = Int32(SOCK_DGRAM.rawValue)
    static let stream = Int32(SOCK_STREAM.rawValue)
    #else
    static let datagram = SOCK_DGRAM
    static let stream = SOCK_STREAM
    #endif
}

private func posixBind(_ fd: Int32, _ addr: inout sockaddr_in) -> Int32 {
    withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

private func posixConnect(_ fd: Int32, _ addr: inout sockaddr_in) -> Int32 {
    withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

enum SocketAddress {
    static func loopbackV4(port: UInt16, address: String = "127.0.0.1") -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        _ = inet_pton(AF_INET, address, &a.sin_addr)
        return a
    }

    static func bind(_ fd: Int32, _ addr: inout sockaddr_in) -> Int32 { posixBind(fd, &addr) }

    static func connect(_ fd: Int32, _ addr: inout sockaddr_in) -> Int32 { posixConnect(fd, &addr) }

    static func localPort(_ fd: Int32) -> UInt16? {
        var a = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return rc == 0 ? UInt16(bigEndian: a.sin_port) : nil
    }
}

/// Waits for `fd` to become readable; true if it did within `timeout`.
private func waitReadable(_ fd: Int32, timeout: TimeInterval) -> Bool {
    var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    let ms = Int32(max(0, min(timeout, 60)) * 1000)
    return poll(&pfd, 1, ms) > 0
}

/// A connected UDP socket to the server (optionally from a chosen loopback source address).
final class UDPClient {
    let fd: Int32

    init(port: UInt16, source: String? = nil) throws {
        fd = socket(AF_INET, SocketType.datagram, 0)
        guard fd >= 0 else { throw IntegrationError("socket: errno \(errno)") }
        if let source {
            var local = SocketAddress.loopbackV4(port: 0, address: source)
            guard SocketAddress.bind(fd, &local) == 0 else { close(fd); throw IntegrationError("bind \(source): errno \(errno)") }
        }
        var remote = SocketAddress.loopbackV4(port: port)
        guard SocketAddress.connect(fd, &remote) == 0 else { close(fd); throw IntegrationError("connect: errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        let n = bytes.withUnsafeBytes { posixSend(fd, $0.baseAddress, bytes.count) }
        guard n == bytes.count else { throw IntegrationError("send: \(n), errno \(errno)") }
    }

    /// One datagram, or nil when nothing arrives within `timeout`.
    func receive(timeout: TimeInterval) -> [UInt8]? {
        guard waitReadable(fd, timeout: timeout) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n >= 0 ? Array(buffer.prefix(n)) : nil
    }

    /// Sends a query and waits for its response.
    func exchange(_ query: [UInt8], timeout: TimeInterval = 2) throws -> [UInt8]? {
        try send(query)
        return receive(timeout: timeout)
    }

    /// Reads and discards whatever is queued.
    func drain() {
        while receive(timeout: 0.05) != nil {}
    }
}

private func posixSend(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int) -> Int {
    send(fd, p, n, 0)
}

/// A TCP connection to the server speaking RFC 1035 §4.2.2 two-octet length framing.
final class TCPClient {
    let fd: Int32
    private var pending = [UInt8]()

    init(port: UInt16) throws {
        fd = socket(AF_INET, SocketType.stream, 0)
        guard fd >= 0 else { throw IntegrationError("socket: errno \(errno)") }
        var remote = SocketAddress.loopbackV4(port: port)
        guard SocketAddress.connect(fd, &remote) == 0 else { close(fd); throw IntegrationError("connect: errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { posixSend(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw IntegrationError("send: errno \(errno)") }
            offset += n
        }
    }

    static func framed(_ message: [UInt8]) -> [UInt8] {
        [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
    }

    /// Reads one framed message; nil on EOF, timeout or reset.
    func readFrame(timeout: TimeInterval) -> [UInt8]? {
        let deadline = Date().addingTimeInterval(timeout)
        guard let length = read(2, deadline: deadline) else { return nil }
        return read(Int(length[0]) << 8 | Int(length[1]), deadline: deadline)
    }

    private func read(_ count: Int, deadline: Date) -> [UInt8]? {
        while pending.count < count {
            let left = deadline.timeIntervalSinceNow
            guard left > 0, waitReadable(fd, timeout: left) else { return nil }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            pending += buffer.prefix(n)
        }
        let out = Array(pending.prefix(count))
        pending.removeFirst(count)
        return out
    }

    /// Waits for the server to close the connection; returns the seconds waited, or nil if still open after `timeout`.
    func waitForClose(timeout: TimeInterval) -> TimeInterval? {
        let start = Date()
        let deadline = start.addingTimeInterval(timeout)
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0, waitReadable(fd, timeout: left) else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return Date().timeIntervalSince(start) }  // EOF or reset
        }
    }
}

// MARK: Packets

enum RRTypeCode {
    static let a: UInt16 = 1, ns: UInt16 = 2, soa: UInt16 = 6, mx: UInt16 = 15, txt: UInt16 = 16
    static let aaaa: UInt16 = 28, opt: UInt16 = 41, axfr: UInt16 = 252
}

/// Builds query packets by hand.
enum DNSPacket {
    static func name(_ text: String) -> [UInt8] {
        var out = [UInt8]()
        for label in text.split(separator: ".") {
            out.append(UInt8(label.utf8.count))
            out += label.utf8
        }
        out.append(0)
        return out
    }

    static func header(id: UInt16, flags: UInt16, qd: UInt16 = 1, an: UInt16 = 0, ns: UInt16 = 0, ar: UInt16 = 0) -> [UInt8] {
        [id, flags, qd, an, ns, ar].flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// An OPT pseudo-record (RFC 6891 §6.1.2) with the given options.
    static func opt(payload: UInt16 = 1232, version: UInt8 = 0, options: [(code: UInt16, data: [UInt8])] = []) -> [UInt8] {
        var rdata = [UInt8]()
        for o in options {
            rdata += [UInt8(o.code >> 8), UInt8(o.code & 0xFF), UInt8(o.data.count >> 8), UInt8(o.data.count & 0xFF)] + o.data
        }
        return [0, 0, 41, UInt8(payload >> 8), UInt8(payload & 0xFF), 0, version, 0, 0,
                UInt8(rdata.count >> 8), UInt8(rdata.count & 0xFF)] + rdata
    }

    static func query(id: UInt16, name: String, type: UInt16 = RRTypeCode.a, qclass: UInt16 = 1, opcode: UInt8 = 0,
                      recursionDesired: Bool = false, opt: [UInt8]? = nil) -> [UInt8] {
        let flags = UInt16(opcode & 0x0F) << 11 | (recursionDesired ? 0x0100 : 0)
        return header(id: id, flags: flags, ar: opt == nil ? 0 : 1) + self.name(name)
            + [UInt8(type >> 8), UInt8(type & 0xFF), UInt8(qclass >> 8), UInt8(qclass & 0xFF)] + (opt ?? [])
    }
}

/// The fixed header of a response.
struct ResponseHeader: CustomStringConvertible {
    var id: UInt16
    var flags: UInt16
    var qd, an, ns, ar: UInt16

    init?(_ b: [UInt8]) {
        guard b.count >= 12 else { return nil }
        func u16(_ i: Int) -> UInt16 { UInt16(b[i]) << 8 | UInt16(b[i + 1]) }
        id = u16(0); flags = u16(2); qd = u16(4); an = u16(6); ns = u16(8); ar = u16(10)
    }

    var isResponse: Bool { flags & 0x8000 != 0 }
    var opcode: Int { Int(flags >> 11) & 0x0F }
    var authoritative: Bool { flags & 0x0400 != 0 }
    var truncated: Bool { flags & 0x0200 != 0 }
    var rcode: Int { Int(flags & 0x000F) }

    var description: String {
        "id=\(id) qr=\(isResponse) opcode=\(opcode) aa=\(authoritative) tc=\(truncated) rcode=\(rcode) qd=\(qd) an=\(an) ns=\(ns) ar=\(ar)"
    }
}

