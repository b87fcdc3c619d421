import LodestarEdge
import LodestarTopology
import NIOCore

/// Reads a PROXY protocol v1/v2 header at the start of a connection, records the client it names, then gets out of the
/// way. A missing or malformed header closes the connection.
final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Longest header accepted (v2 with TLVs); Lodestar reads only the addresses.
    static let maxHeaderBytes = 16 + 4096
    private let info: ConnectionInfo
    private var buffer: ByteBuffer?
    private var done = false

    init(info: ConnectionInfo) { self.info = info }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return context.fireChannelRead(data) }
        var incoming = unwrapInboundIn(data)
        if var b = buffer {
            b.writeBuffer(&incoming)
            buffer = b
        } else {
            buffer = incoming
        }
        guard let b = buffer else { return }
        let result = b.withUnsafeReadableBytes { ProxyProtocol.parse($0) }
        switch result {
        case .needMoreData:
            if b.readableBytes > Self.maxHeaderBytes { context.close(promise: nil) }
        case .invalid:
            done = true
            buffer = nil
            context.close(promise: nil)
        case .header(let header):
            done = true
            if let source = header.source {
                info.client = source
                info.clientText = source.description
            }
            var rest = b
            rest.moveReaderIndex(forwardBy: min(header.consumed, rest.readableBytes))
            buffer = nil
            if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
