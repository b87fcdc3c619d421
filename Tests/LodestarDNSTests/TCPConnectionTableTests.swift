@testable import LodestarDNSServer
import LodestarTopology
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Synchronization
import XCTest

/// The TCP connection table alone: who makes room for whom, and how the idle timeout shrinks as it fills.
final class TCPConnectionTableTests: XCTestCase {
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func at(_ seconds: Double) -> NIODeadline { t0 + .nanoseconds(Int64(seconds * 1e9)) }

    func test_pastTheCapTheLongestIdleMakesRoom() {
        let table = TCPConnectionTable(capacity: 3, idleTimeout: .seconds(10))
        let channels = (0..<4).map { _ in EmbeddedChannel() }
        for (i, c) in channels.prefix(3).enumerated() {
            XCTAssertTrue(table.admit(c, client: .v4(UInt32(i + 1)), now: at(Double(i))).isEmpty)
        }
        table.touch(channels[0], now: at(5))  // the first is busy again: the second is now the longest idle
        let evicted = table.admit(channels[3], client: .v4(9), now: at(6))
        XCTAssertEqual(evicted.map(ObjectIdentifier.init), [ObjectIdentifier(channels[1])])
        XCTAssertEqual(table.count, 3)
        table.remove(channels[1])  // closing an evicted one later changes nothing
        XCTAssertEqual(table.count, 3)
    }

    func test_aClientPastItsOwnCapGivesUpItsOwnLongestIdle() {
        let table = TCPConnectionTable(capacity: 100, idleTimeout: .seconds(10))
        XCTAssertEqual(table.perClientCapacity, 12)
        let mine = (0..<12).map { _ in EmbeddedChannel() }
        let other = EmbeddedChannel()
        XCTAssertTrue(table.admit(other, client: .v4(2), now: at(0)).isEmpty)
        for (i, c) in mine.enumerated() { XCTAssertTrue(table.admit(c, client: .v4(1), now: at(Double(i + 1))).isEmpty) }
        let evicted = table.admit(EmbeddedChannel(), client: .v4(1), now: at(20))
        XCTAssertEqual(evicted.map(ObjectIdentifier.init), [ObjectIdentifier(mine[0])], "its own, not the other client's older one")
    }

    func test_idleTimeoutShrinksAsTheTableFillsAndExpiredOnesAreReturned() {
        let table = TCPConnectionTable(capacity: 10, idleTimeout: .seconds(10))
        XCTAssertEqual(table.effectiveIdleTimeout(count: 5), .seconds(10))
        XCTAssertEqual(table.effectiveIdleTimeout(count: 8), .seconds(4))
        XCTAssertEqual(table.effectiveIdleTimeout(count: 10), .seconds(1))
        let channels = (0..<8).map { _ in EmbeddedChannel() }
        for (i, c) in channels.enumerated() { _ = table.admit(c, client: .v4(UInt32(i)), now: at(Double(i) * 0.5)) }
        // 8 of 10: the timeout is 4 s; at t = 5 s the ones opened before t = 1 s have expired.
        let expired = table.expired(now: at(5)).map(ObjectIdentifier.init)
        XCTAssertEqual(Set(expired), Set(channels.prefix(3).map(ObjectIdentifier.init)))
        XCTAssertEqual(table.count, 5)
    }

    /// The listener's own handler admits accepted connections in the order they come, passes each on, and closes the
    /// longest idle to make room; a closed connection leaves the table and the open count.
    func test_acceptAdmissionOnTheListenerClosesTheOldestAndPassesEachOn() throws {
        let table = TCPConnectionTable(capacity: 3, idleTimeout: .seconds(10))
        let stats = DNSServerStats()
        let listener = EmbeddedChannel(handler: TCPAcceptAdmission(table: table, stats: stats))
        let accepted = (0..<4).map { _ in EmbeddedChannel() }
        let closed = NIOLockedValueBox<Set<Int>>([])
        for (i, c) in accepted.enumerated() { c.closeFuture.whenComplete { _ in closed.withLockedValue { _ = $0.insert(i) } } }
        for child in accepted {
            try listener.writeInbound(child as any Channel)
            let passed = try XCTUnwrap(listener.readInbound(as: (any Channel).self))
            XCTAssertTrue(passed === child, "the accepted connection goes on to be set up")
        }
        XCTAssertEqual(stats.tcpRejected.load(ordering: .relaxed), 1)
        for c in accepted { c.embeddedEventLoop.run() }  // an embedded channel completes its close future on its loop
        XCTAssertEqual(closed.withLockedValue { $0 }, [0], "the first accepted made room")
        XCTAssertEqual(table.count, 3)
        XCTAssertEqual(stats.tcpConnections.load(ordering: .relaxed), 3)
        accepted[2].close(promise: nil)
        accepted[2].embeddedEventLoop.run()
        XCTAssertEqual(closed.withLockedValue { $0 }, [0, 2])
        XCTAssertEqual(table.count, 2)
        XCTAssertEqual(stats.tcpConnections.load(ordering: .relaxed), 2)
        XCTAssertTrue(try listener.finish().isClean)
    }
}
