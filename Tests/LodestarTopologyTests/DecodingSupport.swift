import Foundation
import LodestarTopology
import XCTest

/// Decodes a topology document given as a dictionary (errors are labelled with the file name `t.json`).
func decodeTopology(_ doc: [String: Any]) throws -> Topology {
    try Topology.decode(JSONSerialization.data(withJSONObject: doc), file: "t.json")
}

/// The issues a refused document yields, as printed lines; fails the test when the document decodes.
func topologyIssues(_ doc: [String: Any], file: StaticString = #filePath, line: UInt = #line) -> [String] {
    do {
        _ = try decodeTopology(doc)
        XCTFail("expected the topology to be refused", file: file, line: line)
        return []
    } catch let e as TopologyErrors {
        return e.issues.map(\.description)
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
        return []
    }
}
