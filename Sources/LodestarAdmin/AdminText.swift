import Foundation
import LodestarProxy

/// RFC 3339 UTC with seconds.
package func iso(_ d: Date) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: d)
}

/// A JSON string literal.
package func json(_ s: String) -> String { AdminJSON.string(s) }

/// JSON of a Codable value (sorted keys), with a final newline unless `newline` is false.
package func jsonText<T: Encodable>(_ value: T, newline: Bool = true) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return ((try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}") + (newline ? "\n" : "")
}

/// Why a drain request was refused.
public struct DrainError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}
