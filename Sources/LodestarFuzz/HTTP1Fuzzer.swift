import LodestarEdge

/// The edge's pass-through lane reads request and response heads and scans chunked bodies from outside bytes: the
/// input as a request head, a response head (with its framing facts) and a chunked body (with its trailer fields),
/// whole and in pieces.
func fuzzHTTP1(_ bytes: [UInt8]) {
    let limits = HTTP1Wire.Limits(maxBytes: 1024, maxFields: 16)
    bytes.withUnsafeBytes { b in
        if case .head(let r) = HTTP1Wire.readRequest(b, limits: limits) {
            precondition(r.length <= b.count && r.length <= limits.maxBytes, "a request head longer than its bytes")
            precondition(r.fields.count <= limits.maxFields, "more fields than the limit")
            precondition(r.target.utf8.first == UInt8(ascii: "/"), "a target not in origin-form")
        }
        if case .head(let r) = HTTP1Wire.readResponse(b, limits: limits) {
            precondition(r.length <= b.count && (100...999).contains(r.status), "a response head out of bounds")
            for f in r.fields {
                precondition(f.name.upperBound <= r.length && f.value.upperBound <= r.length, "a field outside its head")
            }
            _ = ResponseFacts(r, bytes: b, isHEAD: false)
        }
        var whole = ChunkedScanner()
        var section: [UInt8] = []
        let used = whole.scan(b, data: { precondition($0.upperBound <= b.count, "data outside the bytes") },
                              trailer: { section += b[$0] })
        if let used { precondition(used <= b.count && (whole.isDone || used == b.count), "chunk scan overran") }
        for f in ChunkedScanner.trailerFields(section) {
            precondition(!f.name.isEmpty && !f.name.utf8.contains(58) && !f.value.utf8.contains(13), "a malformed trailer field")
        }
        // The same bytes in pieces: the same verdict and the same end.
        var pieces = ChunkedScanner()
        var total = 0
        var failed = false
        var start = 0
        while start < b.count && !pieces.isDone {
            let end = min(b.count, start + 1 + (start % 7))
            guard let n = pieces.scan(UnsafeRawBufferPointer(rebasing: b[start..<end])) else { failed = true; break }
            total += n
            start = end
        }
        precondition(failed == (used == nil), "pieces and whole disagree on validity")
        if let used { precondition(total == used && pieces.isDone == whole.isDone, "pieces and whole disagree on the end") }
    }
}
