import LodestarTopology
import XCTest
@testable import LodestarCache

final class CacheControlTests: XCTestCase {
    func test_rfc9111_5_2_tokensAndCaseInsensitiveNames() {
        let cc = CacheControl("Public, MAX-AGE=60, No-Transform, must-revalidate, PROXY-REVALIDATE, immutable, must-understand")
        XCTAssertTrue(cc.isPublic)
        XCTAssertEqual(cc.maxAge, 60)
        XCTAssertTrue(cc.noTransform)
        XCTAssertTrue(cc.mustRevalidate)
        XCTAssertTrue(cc.proxyRevalidate)
        XCTAssertTrue(cc.immutable)
        XCTAssertTrue(cc.mustUnderstand)
        XCTAssertFalse(cc.noStore)
        XCTAssertNil(cc.sMaxAge)
    }

    func test_rfc9111_5_2_quotedStringArgumentsAccepted() {
        let cc = CacheControl(#"max-age="120", s-maxage = "30""#)
        XCTAssertEqual(cc.maxAge, 120)
        XCTAssertEqual(cc.sMaxAge, 30)
    }

    func test_rfc9111_5_2_2_4_noCacheWithQuotedCommaFieldList() {
        let cc = CacheControl(#"no-cache="Set-Cookie, X-Foo", max-age=5"#)
        XCTAssertTrue(cc.noCache)
        XCTAssertEqual(cc.noCacheFields, ["set-cookie", "x-foo"])
        XCTAssertEqual(cc.maxAge, 5)
        XCTAssertEqual(CacheControl("no-cache").noCacheFields, [])
    }

    func test_rfc9111_5_2_2_7_privateWithFieldList() {
        let cc = CacheControl(#"private="Authorization-Info""#)
        XCTAssertTrue(cc.isPrivate)
        XCTAssertEqual(cc.privateFields, ["authorization-info"])
    }

    func test_rfc9111_5_2_staleExtensionsRFC5861() {
        let cc = CacheControl("max-age=10, stale-while-revalidate=30, stale-if-error=600")
        XCTAssertEqual(cc.staleWhileRevalidate, 30)
        XCTAssertEqual(cc.staleIfError, 600)
    }

    func test_rfc9111_5_2_1_requestDirectives() {
        let cc = CacheControl("max-stale, min-fresh=20, only-if-cached, no-store")
        XCTAssertEqual(cc.maxStale, .any)
        XCTAssertEqual(cc.minFresh, 20)
        XCTAssertTrue(cc.onlyIfCached)
        XCTAssertTrue(cc.noStore)
        XCTAssertEqual(CacheControl("max-stale=15").maxStale, .seconds(15))
    }

    func test_rfc9111_1_2_2_deltaSecondsOverflowCapsAt2pow31() {
        let cc = CacheControl("max-age=99999999999999999999999999999999, min-fresh=2147483649")
        XCTAssertEqual(cc.maxAge, 2_147_483_648)
        XCTAssertEqual(cc.minFresh, 2_147_483_648)
    }

    func test_rfc9111_1_2_2_negativeOrNonNumericDeltaSecondsInvalid() {
        let cc = CacheControl("max-age=-5, s-maxage=abc, stale-if-error=1.5, min-fresh=, max-stale=x")
        XCTAssertEqual(cc.maxAge, 0, "invalid max-age is treated as stale")
        XCTAssertEqual(cc.sMaxAge, 0)
        XCTAssertNil(cc.staleIfError)
        XCTAssertNil(cc.minFresh)
        XCTAssertNil(cc.maxStale)
        XCTAssertEqual(cc.invalidDirectives, ["max-age", "s-maxage", "stale-if-error", "min-fresh", "max-stale"])
        XCTAssertEqual(CacheControl("max-age").maxAge, 0, "max-age without a value is invalid")
    }

    func test_rfc9111_4_2_1_duplicateDirectivesFirstWins() {
        let cc = CacheControl(values: ["max-age=10", "max-age=999, max-age=5"])
        XCTAssertEqual(cc.maxAge, 10)
    }

    func test_rfc9111_5_2_unknownDirectivesAndEmptyMembersIgnored() {
        let cc = CacheControl(#",, foo, bar="baz, qux", , =, ="x", max-age=7,"#)
        XCTAssertEqual(cc.maxAge, 7)
        XCTAssertFalse(cc.noCache)
        XCTAssertTrue(cc.invalidDirectives.isEmpty)
        XCTAssertEqual(CacheControl(""), CacheControl())
    }

    func test_rfc9110_5_3_multipleFieldLinesCombined() {
        let cc = CacheControl.response([("Cache-Control", "public"), ("X-Other", "no-store"), ("cache-control", "max-age=3")])
        XCTAssertTrue(cc.isPublic)
        XCTAssertEqual(cc.maxAge, 3)
        XCTAssertFalse(cc.noStore)
    }

    func test_rfc9111_5_4_pragmaNoCacheOnlyWithoutCacheControl() {
        XCTAssertTrue(CacheControl.request([("Pragma", "No-Cache")]).noCache)
        XCTAssertFalse(CacheControl.request([("Pragma", "no-cache"), ("Cache-Control", "max-age=5")]).noCache)
        XCTAssertFalse(CacheControl.response([("Pragma", "no-cache")]).noCache)
    }

    func test_rfc9111_5_2_unterminatedQuoteAndGarbageNeverTrap() {
        let inputs = [
            #"no-cache="unterminated, max-age=5"#, #"private="\"#, "\u{0}\u{FF}=\u{FE}", "=", "==", #"""#,
            String(repeating: ",", count: 5_000), String(repeating: "max-age=1,", count: 2_000),
            "max-age=\u{0663}", // Arabic-Indic digit 3: not DIGIT
        ]
        for s in inputs { _ = CacheControl(s) }
        XCTAssertTrue(CacheControl(#"no-cache="unterminated, max-age=5"#).noCache)
        XCTAssertEqual(CacheControl("max-age=\u{0663}").maxAge, 0)
    }

    func test_rfc9213_2_1_targetedFieldReplacesCacheControlWhenValid() {
        let fresh: HTTPFields = [("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=600")]
        XCTAssertEqual(CacheControl.response(fresh).maxAge, 600)
        XCTAssertFalse(CacheControl.response(fresh).noStore, "Cache-Control is ignored when CDN-Cache-Control is valid")
        let nostore: HTTPFields = [("Cache-Control", "max-age=600"), ("CDN-Cache-Control", "no-store")]
        XCTAssertTrue(CacheControl.response(nostore).noStore)
        XCTAssertNil(CacheControl.response(nostore).maxAge)
        let priv: HTTPFields = [("CDN-Cache-Control", "private, s-maxage=5, stale-if-error=30")]
        XCTAssertTrue(CacheControl.response(priv).isPrivate)
        XCTAssertEqual(CacheControl.response(priv).sMaxAge, 5)
        XCTAssertEqual(CacheControl.response(priv).staleIfError, 30)
    }

    func test_rfc9213_2_1_invalidTargetedFieldFallsBackToCacheControl() {
        // Not Structured Fields dictionaries (RFC 8941 §4.2.2): the targeted field is ignored.
        for bad in ["max-age=10000, &&&&&", "max-age =100", "max-age= 100", "MaX-aGe=3600", "max-age=1,", "a=\"open",
                    "x=1234567890123456", "=5", ", max-age=5"] {
            let cc = CacheControl.response([("Cache-Control", "max-age=7"), ("CDN-Cache-Control", bad)])
            XCTAssertEqual(cc.maxAge, 7, bad)
        }
        // A valid dictionary whose max-age has the wrong type: the field applies, the directive is ignored.
        let typed = CacheControl.response([("Cache-Control", "max-age=7"), ("CDN-Cache-Control", "max-age=\"10000\"")])
        XCTAssertNil(typed.maxAge)
        // Parameters, tokens, booleans, inner lists and extensions parse.
        let rich = CacheControl.response([("CDN-Cache-Control", "foobar, max-age=60;x=1, a=?1, b=tok/en, c=(1 2), d=:aGk=:, e=1.5")])
        XCTAssertEqual(rich.maxAge, 60)
    }

    func test_rfc8941_garbageTargetedFieldsNeverTrap() {
        var rng = FastRandom(seed: 9213)
        let alphabet = Array("max-age=0123456789,; ()\"?:*=-._aZ\t".utf8)
        for _ in 0..<2000 {
            let n = Int(rng.next() % 40)
            let bytes = (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            _ = CacheControl.response([("CDN-Cache-Control", String(decoding: bytes, as: UTF8.self))])
        }
    }
}
