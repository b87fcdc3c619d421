import Foundation

/// A JSON document value; decoded strictly (a boolean is never a number and vice versa).
enum JSONValue: Decodable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}

/// A JSON value walked with its path so every error can name where it is.
struct JSONNode {
    let value: JSONValue?
    let path: String
    let sink: IssueSink

    /// Records a problem at this node.
    func fail(_ reason: String) { sink.add(path: path, reason: reason) }

    /// Path of a child field.
    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Object members, checking that only `allowed` keys occur; nil (with an issue) when not an object.
    func object(allowed: Set<String>) -> [String: JSONNode]? {
        guard case .object(let dict)? = value else {
            fail("expected an object")
            return nil
        }
        var out = [String: JSONNode]()
        for key in dict.keys.sorted() {
            if !allowed.contains(key) {
                sink.add(path: childPath(key), reason: "unknown field (allowed: \(allowed.sorted().joined(separator: ", ")))")
                continue
            }
            out[key] = JSONNode(value: dict[key], path: childPath(key), sink: sink)
        }
        return out
    }

    /// Object whose keys are free-form names (e.g. services by name).
    func map() -> [(String, JSONNode)]? {
        guard case .object(let dict)? = value else {
            fail("expected an object")
            return nil
        }
        return dict.keys.sorted().map { ($0, JSONNode(value: dict[$0], path: childPath($0), sink: sink)) }
    }

    func array() -> [JSONNode]? {
        guard case .array(let list)? = value else {
            fail("expected an array")
            return nil
        }
        return list.enumerated().map { JSONNode(value: $1, path: "\(path)[\($0)]", sink: sink) }
    }

    func string() -> String? {
        guard case .string(let s)? = value else {
            fail("expected a string")
            return nil
        }
        return s
    }

    func bool() -> Bool? {
        guard case .bool(let b)? = value else {
            fail("expected true or false")
            return nil
        }
        return b
    }

    /// Integer within `range`; fractions, booleans and out-of-range values are refused.
    func int(in range: ClosedRange<Int>) -> Int? {
        guard case .number(let d)? = value else {
            fail("expected an integer")
            return nil
        }
        guard d.rounded() == d, let i = Int(exactly: d) else {
            fail("expected an integer")
            return nil
        }
        guard range.contains(i) else {
            fail("\(i) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return i
    }

    func double(in range: ClosedRange<Double>) -> Double? {
        guard case .number(let d)? = value else {
            fail("expected a number")
            return nil
        }
        guard range.contains(d) else {
            fail("\(d) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return d
    }

}

/// Collects issues as the reader walks the document.
final class IssueSink {
    let file: String
    private(set) var issues: [TopologyIssue] = []

    init(file: String) { self.file = file }

    func add(path: String, reason: String) {
        issues.append(TopologyIssue(file: file, path: path, reason: reason))
    }
}
