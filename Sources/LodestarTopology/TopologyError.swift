/// One problem found in a topology file: where (file and JSON path) and why.
public struct TopologyIssue: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file the topology came from (as given by the caller).
    public var file: String
    /// JSON path such as `services.www.edges[2]`; empty for the whole document.
    public var path: String
    /// What rule the value breaks.
    public var reason: String

    public init(file: String, path: String, reason: String) {
        self.file = file
        self.path = path
        self.reason = reason
    }

    public var description: String {
        path.isEmpty ? "\(file): \(reason)" : "\(file): \(path): \(reason)"
    }
}

/// Every problem found while loading a topology; thrown when there is at least one.
public struct TopologyErrors: Error, Sendable, CustomStringConvertible {
    /// The problems in document order.
    public var issues: [TopologyIssue]

    public init(issues: [TopologyIssue]) { self.issues = issues }

    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
