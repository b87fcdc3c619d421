import XCTest
import LodestarGeo
import LodestarTopology

final class GeoCSVTests: XCTestCase {
    typealias S = GeoTestSupport

    func testParsesRowsCommentsBlankLinesAndHeader() throws {
        let text = """
        # a comment
        cidr,latitude,longitude,country,continent,city

        8.8.8.0/24,37.39,-122.08,US,NA,Mountain View
          # indented comment
        85.214.0.0/16, 52.52 , 13.40 ,de,eu,Berlin
        133.0.0.0/8,35.68,139.69,JP,AS
        2404:6800::/32,1.35,103.82,SG,AS,
        """
        let records = try GeoCSV.parse(text, file: "t.csv")
        XCTAssertEqual(records, [
            S.record("8.8.8.0/24", 37.39, -122.08, "US", "NA", "Mountain View"),
            S.record("85.214.0.0/16", 52.52, 13.40, "DE", "EU", "Berlin"),
            S.record("133.0.0.0/8", 35.68, 139.69, "JP", "AS"),
            S.record("2404:6800::/32", 1.35, 103.82, "SG", "AS"),
        ])
    }

    func testCRLFAndQuotedFields() throws {
        let text = "CIDR,lat,lon,cc,cont,city\r\n10.0.0.0/8,38.9,-77.03,US,NA,\"Washington, D.C.\"\r\n"
            + "11.0.0.0/8,1,2,US,NA,\"The \"\"Big\"\" One\"\r\n"
        let records = try GeoCSV.parse(text, file: "crlf.csv")
        XCTAssertEqual(records.map(\.city), ["Washington, D.C.", "The \"Big\" One"])
        XCTAssertEqual(records.first?.prefix, IPPrefix("10.0.0.0/8"))
    }

    func testHeaderOnlySkippedAsFirstRow() {
        let text = "8.8.8.0/24,1,1,US,NA\ncidr,latitude,longitude,country,continent\n"
        assertError(text, line: 2, contains: "bad CIDR")
    }

    func testErrorsNameFileLineAndReason() {
        assertError("# x\n\n8.8.8.0/33,1,1,US,NA\n", line: 3, contains: "bad CIDR '8.8.8.0/33'")
        assertError("nonsense,1,1,US,NA\n", line: 1, contains: "bad CIDR")
        assertError("8.8.8.8,1,1,US,NA\n", line: 1, contains: "bad CIDR")
        assertError("8.8.8.8/24,1,1,US,NA\n", line: 1, contains: "host bits")
        assertError("8.8.8.0/24,91,1,US,NA\n", line: 1, contains: "latitude '91'")
        assertError("8.8.8.0/24,north,1,US,NA\n", line: 1, contains: "latitude")
        assertError("8.8.8.0/24,nan,1,US,NA\n", line: 1, contains: "latitude")
        assertError("8.8.8.0/24,1,-180.5,US,NA\n", line: 1, contains: "longitude '-180.5'")
        assertError("8.8.8.0/24,1,1,USA,NA\n", line: 1, contains: "country 'USA'")
        assertError("8.8.8.0/24,1,1,U1,NA\n", line: 1, contains: "country")
        assertError("8.8.8.0/24,1,1,US,XX\n", line: 1, contains: "continent 'XX'")
        assertError("8.8.8.0/24,1,1,US\n", line: 1, contains: "found 4")
        assertError("8.8.8.0/24,1,1,US,NA,City,extra\n", line: 1, contains: "found 7")
        assertError("8.8.8.0/24,1,1,US,NA,\"open\n", line: 1, contains: "quoted")
        assertError("8.8.8.0/24,1,1,US,NA\n\n8.8.8.0/24,2,2,US,NA\n", line: 3, contains: "already listed on line 1")
    }

    func testErrorDescriptionFormat() {
        XCTAssertThrowsError(try GeoCSV.parse("a\nb,1,1,US,NA", file: "GeoData/x.csv")) { error in
            XCTAssertTrue(String(describing: error).hasPrefix("GeoData/x.csv:1: "), "\(error)")
        }
    }

    func testSampleCSVParsesAndCoversTheContinents() throws {
        let text = try String(contentsOf: S.sampleCSV, encoding: .utf8)
        let records = try GeoCSV.parse(text, file: "GeoData/lodestar-sample.csv")
        XCTAssertGreaterThanOrEqual(records.count, 30)
        XCTAssertLessThanOrEqual(records.count, 50)
        for continent in ["NA", "SA", "EU", "AF", "AS", "OC"] {
            XCTAssertTrue(records.contains { $0.continent == continent && $0.prefix.address.isIPv4 }, "\(continent) v4")
            XCTAssertTrue(records.contains { $0.continent == continent && !$0.prefix.address.isIPv4 }, "\(continent) v6")
        }
        let v4Lengths = Set(records.filter { $0.prefix.address.isIPv4 }.map(\.prefix.length))
        let v6Lengths = Set(records.filter { !$0.prefix.address.isIPv4 }.map(\.prefix.length))
        XCTAssertTrue(v4Lengths.isSuperset(of: [8, 16, 24]), "\(v4Lengths)")
        XCTAssertGreaterThanOrEqual(v4Lengths.count, 5)
        XCTAssertTrue(v6Lengths.isSuperset(of: [29, 32, 48]), "\(v6Lengths)")
        for doc in ["192.0.2.1", "198.51.100.1", "203.0.113.1", "2001:db8::1"] {
            XCTAssertFalse(records.contains { $0.prefix.contains(S.ip(doc)) }, "\(doc) must stay unlisted")
        }
        for (cidr, city) in [("127.0.1.0/24", "Ashburn"), ("127.0.2.0/24", "Frankfurt"), ("127.0.3.0/24", "Singapore"),
                             ("198.18.1.0/24", "Ashburn"), ("198.18.2.0/24", "Frankfurt"),
                             ("198.18.3.0/24", "Singapore")] {
            XCTAssertEqual(records.first { $0.prefix == IPPrefix(cidr) }?.city, city, cidr)
        }
    }

    private func assertError(_ text: String, line: Int, contains fragment: String,
                             file: StaticString = #filePath, testLine: UInt = #line) {
        XCTAssertThrowsError(try GeoCSV.parse(text, file: "f.csv"), file: file, line: testLine) { error in
            guard let e = error as? GeoCSVError else { return XCTFail("unexpected \(error)", file: file, line: testLine) }
            XCTAssertEqual(e.file, "f.csv", file: file, line: testLine)
            XCTAssertEqual(e.line, line, "\(e)", file: file, line: testLine)
            XCTAssertTrue(e.description.hasPrefix("f.csv:\(line): "), e.description, file: file, line: testLine)
            XCTAssertTrue(e.reason.contains(fragment), "\(e.reason) lacks \(fragment)", file: file, line: testLine)
        }
    }
}
