#!/usr/bin/env python3
"""Write Tests/Conformance/cases/*.json: the HTTP cache-tests cases, transcribed as data.

The cases below were transcribed by hand from the test files of
https://github.com/http-tests/cache-tests (BSD-3-Clause, see ../README.md for the
commits). This script only holds that data and expands the few generated families
(status codes, header lists, invalidation methods) and the request templates the
suite shares between files; the JSON it writes is what cache_conformance.py reads.

Template expansion follows the suite's documented rule for templates: members of the
request override the template's, except arrays (headers), which are the template's
followed by the request's.

Usage: python3 Tests/Conformance/tools/transcribe.py   (rewrites cases/*.json)
"""
import copy
import json
import os

REPO = "https://github.com/http-tests/cache-tests"
C_MAIN = "bb49f1de4fa6502ab3bd61bb0ec35b431e77a92f"
C_CC_FRESHNESS = "3d88077c0cb3f72384a3852b64b70f50fa5c7ec9"
C_CC_REQUEST = "a85feb43fb321904ab0e63b0095de336df674dff"
C_COND_ETAG = "4dc524b42a59c73c2d1edf1bd69717c47def81dd"
C_COND_LM = "343f913f39b3381573d02aaf871c7bc57105f4ab"
C_METHOD = "c847368f3153b95e997722f9cba9dceb118046ba"
C_PRAGMA = "427278218996ee9df525a4d5a5dd26d7e24a9f3b"
C_UPDATE_HEAD = "b0ae3e01d6bfd33ca67966cbbb677aca8f4f49e2"
C_HEADER_LIST = "0c92b8837b5fa59fa61e7498575f55a20b92fd2c"
C_TEMPLATES = "4367d42ca44f8d1260a4a68cd1a53372c3c0166e"

# The suite's file order (tests/index.mjs), minus the experimental collapse.mjs.
ORDER = [
    "cc-freshness", "cc-parse", "age-parse", "expires-freshness", "expires-parse",
    "cc-response", "stale", "heuristic-freshness", "method", "status", "cc-request",
    "pragma", "vary", "vary-parse", "conditional-lm", "conditional-etag", "headers",
    "update304", "update-head", "invalidation", "partial", "authorization", "other",
    "cdn-cache-control", "interim",
]

DAY = 24 * 60 * 60


def http_content(key, length=15):
    """Return the suite's deterministic pseudo-random body/value text for a key."""
    seed = sum(ord(c) for c in key) if isinstance(key, str) else 0
    return "".join(chr(((i * seed) % 26) + 97) for i in range(length))


def merge(template, request):
    """Expand a template: scalars/objects from the request win, arrays are concatenated."""
    out = copy.deepcopy(template)
    for key, value in request.items():
        if isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = out[key] + copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def template(base):
    """Return a function that expands the given template with a request."""
    return lambda request=None: merge(base, request or {})


# tests/lib/templates.mjs
# `fresh` is a setup request followed by a pause in the suite's current templates (older
# versions spelled out `setup: true, pause_after: true` in every test that now uses it).
fresh = template({"response_headers": [["Expires", 100000], ["Cache-Control", "max-age=100000"],
                                       ["Last-Modified", 0], ["Date", 0]],
                  "setup": True, "pause_after": True})
stale_t = template({"response_headers": [["Expires", -5000], ["Last-Modified", -100000], ["Date", 0]]})
become_stale = template({"response_headers": [["Cache-Control", "max-age=2"], ["Template-A", "1"]],
                         "setup": True, "pause_after": True})


def t(id_, name, requests, kind="required", depends_on=None, **flags):
    """Build one test case record."""
    case = {"id": id_, "name": name, "kind": kind}
    if depends_on:
        case["depends_on"] = depends_on
    for flag in ("browser_only", "browser_skip", "cdn_only"):
        if flags.get(flag):
            case[flag] = True
    case["requests"] = requests
    return case


def setup_then(response_headers, second, pause=True, setup_extra=None):
    """The common two-request shape: a setup response, then the checked request."""
    first = {"response_headers": response_headers, "setup": True}
    if pause:
        first["pause_after"] = True
    if setup_extra:
        first.update(setup_extra)
    return [first, second]


CACHED = {"expected_type": "cached"}
NOT_CACHED = {"expected_type": "not_cached"}


def cc_freshness():
    """tests/cc-freshness.mjs"""
    T = []
    T.append(t("freshness-none", "Does HTTP cache avoid reusing a response without explict freshness information or a validator (reuse is allowed, but not common, and many tests rely upon a cache _not_ doing it)?",
               [{"setup": True, "pause_after": True}, dict(NOT_CACHED)], kind="check"))
    T.append(t("freshness-max-age", "An optimal HTTP cache reuses a response with positive `Cache-Control: max-age`",
               setup_then([["Cache-Control", "max-age=3600"]], dict(CACHED)), kind="optimal", depends_on=["freshness-none"]))
    T.append(t("freshness-max-age-stale", "HTTP cache must not reuse a response with `Cache-Control: max-age` after it becomes stale",
               [become_stale(), dict(NOT_CACHED)], depends_on=["freshness-max-age"]))
    T.append(t("freshness-max-age-0", "HTTP cache must not reuse a response with `Cache-Control: max-age=0`",
               setup_then([["Cache-Control", "max-age=0"]], dict(NOT_CACHED)), depends_on=["freshness-none"]))
    for id_, value in (("freshness-max-age-max-minus-1", "2147483647"), ("freshness-max-age-max", "2147483648"),
                       ("freshness-max-age-max-plus-1", "2147483649"), ("freshness-max-age-max-plus", "99999999999")):
        T.append(t(id_, f"An optimal HTTP cache reuses a response with `Cache-Control: max-age: {value}`",
                   setup_then([["Cache-Control", f"max-age={value}"]], dict(CACHED)), kind="optimal", depends_on=["freshness-none"]))
    T.append(t("freshness-max-age-age", "HTTP cache must not reuse a response when the `Age` header is greater than its `Cache-Control: max-age` freshness lifetime",
               setup_then([["Date", 0], ["Cache-Control", "max-age=3600"], ["Age", "7200"]], dict(NOT_CACHED)), depends_on=["freshness-max-age"]))
    T.append(t("freshness-max-age-date", "Does HTTP cache consider `Date` when applying `Cache-Control: max-age` (i.e., is `apparent_age` used)?",
               setup_then([["Date", -7200], ["Cache-Control", "max-age=3600"]], dict(NOT_CACHED)), kind="check", depends_on=["freshness-max-age"]))
    T.append(t("freshness-max-age-expires", "An optimal HTTP cache reuses a response with positive `Cache-Control: max-age` and a past `Expires`",
               setup_then([["Cache-Control", "max-age=3600"], ["Expires", -7200], ["Date", 0]], dict(CACHED)), kind="optimal", depends_on=["freshness-max-age"]))
    T.append(t("freshness-max-age-expires-invalid", "An optimal HTTP cache reuses a response with positive `Cache-Control: max-age` and an invalid `Expires`",
               setup_then([["Cache-Control", "max-age=3600"], ["Expires", "0", False], ["Date", 0]], dict(CACHED)), kind="optimal", depends_on=["freshness-max-age"]))
    T.append(t("freshness-max-age-0-expires", "HTTP cache must not reuse a response with `Cache-Control: max-age=0` and a future `Expires`",
               setup_then([["Expires", 3600], ["Cache-Control", "max-age=0"], ["Date", 0]], dict(NOT_CACHED)), depends_on=["freshness-none"]))
    T.append(t("freshness-max-age-extension", "An optimal HTTP cache reuses a response with positive `Cache-Control: max-age` and a CC extension present",
               setup_then([["Cache-Control", "foobar, max-age=3600"]], dict(CACHED)), kind="optimal", depends_on=["freshness-max-age"]))
    T.append(t("freshness-max-age-case-insenstive", "An optimal HTTP cache reuses a response with positive `Cache-Control: MaX-AgE`",
               setup_then([["Cache-Control", "MaX-aGe=3600"]], dict(CACHED)), kind="optimal", depends_on=["freshness-max-age"]))
    T.append(t("freshness-max-age-negative", "HTTP cache must not reuse a response with negative `Cache-Control: max-age`",
               setup_then([["Cache-Control", "max-age=-3600"]], dict(NOT_CACHED)), depends_on=["freshness-none"]))
    T.append(t("freshness-max-age-s-maxage-private", "Private HTTP cache must not prefer `Cache-Control: s-maxage` over shorter `Cache-Control: max-age`",
               setup_then([["Cache-Control", "s-maxage=3600, max-age=1"]], dict(NOT_CACHED)), depends_on=["freshness-max-age"], browser_only=True))
    T.append(t("freshness-max-age-s-maxage-private-multiple", "Private HTTP cache must not prefer `Cache-Control: s-maxage` over shorter `Cache-Control: max-age` (multiple headers)",
               setup_then([["Cache-Control", "s-maxage=3600"], ["Cache-Control", "max-age=1"]], dict(NOT_CACHED)), depends_on=["freshness-max-age"], browser_only=True))
    T.append(t("freshness-s-maxage-shared", "An optimal shared HTTP cache reuses a response with positive `Cache-Control: s-maxage`",
               setup_then([["Cache-Control", "s-maxage=3600"]], dict(CACHED)), depends_on=["freshness-none"], browser_skip=True))
    T.append(t("freshness-max-age-s-maxage-shared-longer", "Shared HTTP cache must prefer short `Cache-Control: s-maxage` over a longer `Cache-Control: max-age`",
               setup_then([["Cache-Control", "max-age=3600, s-maxage=1"]], dict(NOT_CACHED)), depends_on=["freshness-s-maxage-shared"], browser_skip=True))
    T.append(t("freshness-max-age-s-maxage-shared-longer-reversed", "Shared HTTP cache must prefer short `Cache-Control: s-maxage` over a longer `Cache-Control: max-age` (reversed)",
               setup_then([["Cache-Control", "s-maxage=1, max-age=3600"]], dict(NOT_CACHED)), depends_on=["freshness-s-maxage-shared"], browser_skip=True))
    T.append(t("freshness-max-age-s-maxage-shared-longer-multiple", "Shared HTTP cache must prefer short `Cache-Control: s-maxage` over a longer `Cache-Control: max-age` (multiple headers)",
               setup_then([["Cache-Control", "max-age=3600"], ["Cache-Control", "s-maxage=1"]], dict(NOT_CACHED)), depends_on=["freshness-s-maxage-shared"], browser_skip=True))
    T.append(t("freshness-max-age-s-maxage-shared-shorter", "An optimal shared HTTP cache prefers long `Cache-Control: s-maxage` over a shorter `Cache-Control: max-age`",
               setup_then([["Cache-Control", "max-age=1, s-maxage=3600"]], dict(CACHED)), kind="optimal", depends_on=["freshness-s-maxage-shared"], browser_skip=True))
    T.append(t("freshness-max-age-s-maxage-shared-shorter-expires", "An optimal shared HTTP cache prefers long `Cache-Control: s-maxage` over `Cache-Control: max-age=0`, even with a past `Expires`",
               setup_then([["Expires", -10], ["Cache-Control", "max-age=0, s-maxage=3600"]], dict(CACHED)), kind="optimal", depends_on=["freshness-s-maxage-shared"], browser_skip=True))
    return {"id": "cc-freshness", "name": "Cache-Control Freshness",
            "description": "These tests check how caches calculate freshness using `Cache-Control`.",
            "commit": C_CC_FRESHNESS, "tests": T}


def cc_parse():
    """tests/cc-parse.mjs"""
    def one(id_, name, headers, expect, kind="required", dep="freshness-none"):
        """A cc-parse case: one setup response, then the checked request."""
        return t(id_, name, setup_then(headers, dict(expect)), kind=kind, depends_on=[dep])
    T = [
        one("freshness-max-age-two-fresh-stale-sameline", "Does HTTP cache reuse a response when first `Cache-Control: max-age` is fresh, but second is stale (same line)?",
            [["Cache-Control", "max-age=1800, max-age=1", False]], CACHED, "check"),
        one("freshness-max-age-two-fresh-stale-sepline", "Does HTTP cache reuse a response when first `Cache-Control: max-age` is fresh, but second is stale (separate lines)?",
            [["Cache-Control", "max-age=1800", False], ["Cache-Control", "max-age=1", False]], CACHED, "check"),
        one("freshness-max-age-two-stale-fresh-sameline", "Does HTTP cache reuse a response when first `Cache-Control: max-age` is stale, but second is fresh (same line)?",
            [["Cache-Control", "max-age=1, max-age=1800", False]], CACHED, "check"),
        one("freshness-max-age-two-stale-fresh-sepline", "Does HTTP cache reuse a response when first `Cache-Control: max-age` is stale, but second is fresh (separate lines)?",
            [["Cache-Control", "max-age=1", False], ["Cache-Control", "max-age=1800", False]], CACHED, "check"),
        one("freshness-max-age-quoted", "Does HTTP cache reuse a response with a quoted `Cache-Control: max-age`?",
            [["Cache-Control", 'max-age="3600"', False]], CACHED, "check", "freshness-max-age"),
        one("freshness-max-age-ignore-quoted", 'HTTP cache must not reuse a response with `max-age` in a quoted string (before the "real" `max-age`)',
            [["Cache-Control", 'extension="max-age=3600", max-age=1', False]], NOT_CACHED, "required", "freshness-max-age"),
        one("freshness-max-age-ignore-quoted-rev", 'HTTP cache mut not reuse a response with `max-age` in a quoted string (after the "real" `max-age`)',
            [["Cache-Control", 'max-age=1, extension="max-age=3600"', False]], NOT_CACHED, "required", "freshness-max-age"),
        one("freshness-max-age-space-before-equals", "Does HTTP cache ignore max-age with space before the `=`?",
            [["Cache-Control", "max-age =3600", False]], NOT_CACHED, "check"),
        one("freshness-max-age-space-after-equals", "Does HTTP cache ignore max-age with space after the `=`?",
            [["Cache-Control", "max-age= 3600", False]], NOT_CACHED, "check"),
        one("freshness-max-age-leading-zero", "An optimal HTTP cache reuses max-age with the value `003600`",
            [["Cache-Control", "max-age=003600", False]], CACHED),
        one("freshness-max-age-single-quoted", "HTTP cache must not reuse a response with a single-quoted `Cache-Control: max-age`",
            [["Cache-Control", "max-age='3600'", False]], NOT_CACHED),
        one("freshness-max-age-decimal-zero", "Does HTTP cache reuse max-age with `3600.0` value?",
            [["Cache-Control", "max-age=3600.0", False]], CACHED, "check"),
        one("freshness-max-age-decimal-five", "Does HTTP cache reuse max-age with `3600.5` value?",
            [["Cache-Control", "max-age=3600.5", False]], CACHED, "check"),
        one("freshness-max-age-a100", "Does HTTP cache reuse a response with an invalid `Cache-Control: max-age` (leading alpha)?",
            [["Cache-Control", "max-age=a3600", False]], CACHED, "check"),
        one("freshness-max-age-100a", "Does HTTP cache reuse a response with an invalid `Cache-Control: max-age` (trailing alpha)?",
            [["Cache-Control", "max-age=3600a", False]], CACHED, "check"),
    ]
    return {"id": "cc-parse", "name": "Cache-Control Parsing",
            "description": "These tests check how cache parse the `Cache-Control` response header.",
            "commit": C_MAIN, "tests": T}


def age_parse():
    """tests/age-parse.mjs"""
    def one(id_, name, ages, expect, kind="required", max_age="max-age=3600"):
        """An age-parse case: max-age plus the given Age header line(s)."""
        headers = [["Date", 0], ["Cache-Control", max_age]] + [["Age", a, False] for a in ages]
        return t(id_, name, setup_then(headers, dict(expect)), kind=kind, depends_on=["freshness-max-age-age"])
    T = [
        one("age-parse-nonnumeric", "HTTP cache should ignore an `Age` header with a non-numeric value", ["abc"], CACHED),
        one("age-parse-negative", "HTTP cache should ignore an `Age` header with a negative value", ["-7200"], CACHED),
        one("age-parse-float", "HTTP cache should ignore an `Age` header with a float value", ["7200.0"], CACHED),
        one("age-parse-large-minus-one", "HTTP cache should consider a response with a `Age` value of 2147483647 to be stale", ["2147483647"], NOT_CACHED),
        one("age-parse-large", "HTTP cache should consider a response with a `Age` value of 2147483648 to be stale", ["2147483648"], NOT_CACHED),
        one("age-parse-larger", "HTTP cache should consider a response with a `Age` value of 2147483649 to be stale", ["2147483649"], NOT_CACHED),
        one("age-parse-suffix", "HTTP cache should consider a response with a single `Age` header line `old, 0` to be stale", ["7200, 0"], NOT_CACHED),
        one("age-parse-prefix", "HTTP cache should consider a response with a single `Age` header line `0, old` to be fresh", ["0, 7200"], CACHED),
        one("age-parse-suffix-twoline", "HTTP cache should use the first line in a response with multiple `Age` header lines: `old`, `0`", ["7200", "0"], NOT_CACHED),
        one("age-parse-prefix-twoline", "HTTP cache should use the first line in a response with multiple `Age` header lines: `0`, `old`", ["0", "7200"], CACHED),
        one("age-parse-dup-0", "HTTP cache should consider a response with a single line `Age: 0, 0` to be fresh", ["0, 0"], CACHED),
        one("age-parse-dup-0-twoline", "HTTP cache should consider a response with two `Age: 0` header lines to be fresh", ["0", "0"], CACHED),
        one("age-parse-dup-old", "HTTP cache should consider a response with two `Age: not_old` header lines to be fresh", ["3600", "3600"], CACHED, max_age="max-age=10000"),
        one("age-parse-parameter", "Does HTTP cache consider an alphabetic parameter on `Age` header to be valid?", ["7200;foo=bar"], NOT_CACHED, "check"),
        one("age-parse-numeric-parameter", "Does HTTP cache should consider a numeric parameter on `Age` header to be valid?", ["7200;foo=111"], NOT_CACHED, "check"),
    ]
    return {"id": "age-parse", "name": "Age Parsing",
            "description": "These tests check how caches parse the `Age` response header.",
            "commit": C_MAIN, "tests": T}


def expires_freshness():
    """tests/expires-freshness.mjs"""
    T = [
        t("freshness-expires-future", "An optimal HTTP cache reuses a response with a future `Expires`",
          setup_then([["Expires", 30 * DAY], ["Date", 0]], dict(CACHED)), kind="optimal", depends_on=["freshness-none"]),
        t("freshness-expires-past", "HTTP cache must not reuse a response with a past `Expires`",
          setup_then([["Expires", -30 * DAY], ["Date", 0]], dict(NOT_CACHED)), depends_on=["freshness-expires-future"]),
        t("freshness-expires-present", "HTTP cache must not reuse a response with a present `Expires`",
          setup_then([["Expires", 0], ["Date", 0]], dict(NOT_CACHED), pause=False), depends_on=["freshness-none"]),
        t("freshness-expires-old-date", "HTTP cache must not reuse a response with an `Expires` older than `Date`, both fast",
          setup_then([["Expires", 300], ["Date", 400]], dict(NOT_CACHED)), depends_on=["freshness-expires-future"]),
        t("freshness-expires-invalid", "HTTP cache must not reuse a response with an invalid `Expires` (0)",
          setup_then([["Expires", "0", False], ["Date", 0]], dict(NOT_CACHED)), depends_on=["freshness-expires-future"]),
        t("freshness-expires-invalid-date", "An optimal HTTP cache reuses a response with `Expires`, even if `Date` is invalid",
          setup_then([["Date", "foo", False], ["Expires", 10]], dict(CACHED), pause=False), kind="optimal", depends_on=["freshness-expires-future"]),
        t("freshness-expires-age-slow-date", "HTTP cache must not reuse a response when the `Age` header is greater than its `Expires` minus `Date`, and `Date` is slow",
          setup_then([["Date", -10], ["Expires", 10], ["Age", "25"]], dict(NOT_CACHED), pause=False), depends_on=["freshness-expires-future"]),
        t("freshness-expires-age-fast-date", "HTTP cache must not reuse a response when the `Age` header is greater than its `Expires` minus `Date`, and `Date` is fast",
          setup_then([["Date", 10], ["Expires", 20], ["Age", "15"]], dict(NOT_CACHED), pause=False), depends_on=["freshness-expires-future"]),
    ]
    return {"id": "expires", "name": "Expires Freshness",
            "description": "These tests check how caches calculate freshness using `Expires`.",
            "commit": C_MAIN, "tests": T}


def expires_parse():
    """tests/expires-parse.mjs"""
    def one(id_, name, expires, expect, kind="required", pause=True):
        """An expires-parse case: the given Expires line(s) and a Date."""
        headers = [["Expires", e, False] for e in expires] + [["Date", 0]]
        return t(id_, name, setup_then(headers, dict(expect), pause=pause), kind=kind, depends_on=["freshness-expires-future"])
    opt = "optimal"
    T = [
        one("freshness-expires-32bit", "An optimal HTTP cache reuses a response with an `Expires` that is exactly 32 bits", ["Tue, 19 Jan 2038 14:14:08 GMT"], CACHED, opt),
        one("freshness-expires-far-future", "An optimal HTTP cache reuses a response with an `Expires` that is far in the future", ["Sun, 21 Nov 2286 04:46:39 GMT"], CACHED, opt),
        one("freshness-expires-rfc850", "An optimal HTTP cache reuses a response with a future `Expires` in obsolete RFC 850 format", ["Thursday, 18-Aug-50 02:01:18 GMT"], CACHED, opt),
        one("freshness-expires-ansi-c", "An optimal HTTP cache reuses a response with a future `Expires` in ANSI C's asctime() format", ["Thu Aug  8 02:01:18 2050"], CACHED, opt),
        one("freshness-expires-wrong-case-weekday", "An optimal HTTP cache reuses a response with a future `Expires` using wrong case (weekday)", ["THU, 18 Aug 2050 02:01:18 GMT"], CACHED, opt),
        one("freshness-expires-wrong-case-month", "An optimal HTTP cache reuses a response with a future `Expires` using wrong case (month)", ["Thu, 18 AUG 2050 02:01:18 GMT"], CACHED, opt),
        one("freshness-expires-wrong-case-tz", "An optimal HTTP cache reuses a response with a future `Expires` using wrong case (tz)", ["Thu, 18 Aug 2050 02:01:18 gMT"], CACHED, opt),
        one("freshness-expires-invalid-utc", "HTTP cache must not reuse a response with an invalid `Expires` (UTC)", ["Thu, 18 Aug 2050 02:01:18 UTC"], NOT_CACHED),
        one("freshness-expires-invalid-aest", "HTTP cache must not reuse a response with an invalid `Expires` (other tz)", ["Thu, 18 Aug 2050 02:01:18 AEST"], NOT_CACHED),
        one("freshness-expires-invalid-2-digit-year", "HTTP cache must not reuse a response with an invalid `Expires` (two-digit year)", ["Thu, 18 Aug 50 02:01:18 GMT"], NOT_CACHED),
        one("freshness-expires-invalid-no-comma", "HTTP cache must not reuse a response with an invalid `Expires` (missing comma)", ["Thu 18 Aug 2050 02:01:18 GMT"], NOT_CACHED),
        one("freshness-expires-invalid-multiple-spaces", "HTTP cache must not reuse a response with an invalid `Expires` (multiple spaces)", ["Thu, 18  Aug  2050 02:01:18 GMT"], NOT_CACHED, pause=False),
        one("freshness-expires-invalid-date-dashes", "HTTP cache must not reuse a response with an invalid `Expires` (date dashes)", ["Thu, 18-Aug-2050 02:01:18 GMT"], NOT_CACHED, pause=False),
        one("freshness-expires-invalid-time-periods", "HTTP cache must not reuse a response with an invalid `Expires` (time periods)", ["Thu, 18 Aug 2050 02.01.18 GMT"], NOT_CACHED, pause=False),
        one("freshness-expires-invalid-1-digit-hour", "HTTP cache must not reuse a response with an invalid `Expires` (1-digit hour)", ["Thu, 18 Aug 2050 2:01:18 GMT"], NOT_CACHED, pause=False),
        one("freshness-expires-invalid-multiple-lines", "HTTP cache must not reuse a response with an invalid `Expires` (multiple lines)",
            ["Thu, 18 Aug 2050 2:01:18 GMT", "Thu, 18 Aug 2050 2:01:19 GMT"], NOT_CACHED, pause=False),
    ]
    return {"id": "expires-parse", "name": "Expires Parsing",
            "description": "These tests check how caches parse the `Expires` response header.",
            "commit": C_MAIN, "tests": T}


def cc_response():
    """tests/cc-response.mjs"""
    T = []
    T.append(t("cc-resp-private-shared", "Shared HTTP cache must not store a response with `Cache-Control: private`",
               setup_then([["Cache-Control", "private, max-age=3600"]], dict(NOT_CACHED), pause=False), browser_skip=True))
    T.append(t("cc-resp-private-private", "An optimal private HTTP cache reuses a fresh response with `Cache-Control: private`",
               setup_then([["Cache-Control", "private, max-age=3600"]], dict(CACHED), pause=False), kind="optimal", browser_only=True))
    T.append(t("cc-resp-no-store", "HTTP cache must not store a response with `Cache-Control: no-store`",
               setup_then([["Cache-Control", "no-store"]], dict(NOT_CACHED), pause=False)))
    T.append(t("cc-resp-no-store-case-insensitive", "HTTP cache must not store a response with `Cache-Control: nO-StOrE`",
               setup_then([["Cache-Control", "No-StOrE"]], dict(NOT_CACHED), pause=False), depends_on=["cc-resp-no-store"]))
    T.append(t("cc-resp-no-store-fresh", "HTTP cache must not store a response with `Cache-Control: no-store`, even with `max-age` and `Expires`",
               setup_then([["Cache-Control", "max-age=10000, no-store"], ["Expires", 10000], ["Date", 0]], dict(NOT_CACHED), pause=False),
               depends_on=["cc-resp-no-store"]))
    for id_, name, cc in (("cc-resp-no-store-old-new", "Does HTTP cache use older stored response when newer one came with `Cache-Control: no-store`?", "no-store"),
                          ("cc-resp-no-store-old-max-age", "Does HTTP cache use older stored response when newer one came with `Cache-Control: no-store, max-age=0`?", "no-store, max-age=0")):
        T.append(t(id_, name, [
            {"response_headers": [["Cache-Control", "max-age=10000"], ["Expires", 10000], ["Date", 0], ["A", "1"]], "setup": True, "pause_after": True},
            {"response_headers": [["Cache-Control", cc], ["Date", 0], ["A", "2"]], "setup": True, "pause_after": True},
            {"expected_type": "cached", "expected_response_headers": [["a", "1"]]},
        ], depends_on=["cc-resp-no-store"]))
    T.append(t("cc-resp-no-cache", "HTTP cache must not use a cached response with `Cache-Control: no-cache`, even with `max-age` and `Expires`",
               setup_then([["Cache-Control", "max-age=10000, no-cache"], ["Expires", 10000], ["Date", 0]], dict(NOT_CACHED), pause=False)))
    T.append(t("cc-resp-no-cache-case-insensitive", "HTTP cache must not use a cached response with `Cache-Control: No-CaChE`, even with `max-age` and `Expires`",
               setup_then([["Cache-Control", "max-age=10000, No-CaChE"], ["Expires", 10000], ["Date", 0]], dict(NOT_CACHED), pause=False),
               depends_on=["cc-resp-no-cache"]))
    T.append(t("cc-resp-no-cache-revalidate", "An optimal HTTP cache stores a response with `Cache-Control: no-cache`, but revalidates it upon use",
               setup_then([["Cache-Control", "no-cache"], ["ETag", '"abcd"']], {"expected_type": "etag_validated"}, pause=False),
               kind="optimal", depends_on=["cc-resp-no-cache"]))
    T.append(t("cc-resp-no-cache-revalidate-fresh", "An optimal HTTP cache stores a response with `Cache-Control: no-cache`, but revalidates it upon use, even with `max-age` and `Expires`",
               setup_then([["Cache-Control", "max-age=10000, no-cache"], ["Expires", 10000], ["Date", 0], ["ETag", '"abcd"']],
                          {"expected_type": "etag_validated"}, pause=False),
               kind="optimal", depends_on=["cc-resp-no-cache"]))
    T.append(t("headers-omit-headers-listed-in-Cache-Control-no-cache-single", "Does `Cache-Control: no-cache` inhibit storing a listed header?",
               setup_then([["Cache-Control", 'no-cache="a"'], ["a", "1"], ["b", "2"], ["Cache-Control", "max-age=3600"], ["Date", 0]],
                          {"expected_type": "cached", "expected_response_headers": [["b", "2"]],
                           "expected_response_headers_missing": ["a"], "setup_tests": ["expected_type"]}),
               kind="check", depends_on=["cc-resp-no-cache-revalidate"]))
    T.append(t("headers-omit-headers-listed-in-Cache-Control-no-cache", "Does `Cache-Control: no-cache` inhibit storing multiple listed headers?",
               setup_then([["Cache-Control", 'no-cache="a, b"'], ["a", "1"], ["b", "2"], ["c", "3"], ["Cache-Control", "max-age=3600"], ["Date", 0]],
                          {"expected_type": "cached", "expected_response_headers": [["c", "3"]],
                           "expected_response_headers_missing": ["a", "b"], "setup_tests": ["expected_type"]}),
               kind="check", depends_on=["cc-resp-no-cache-revalidate"]))
    T.append(t("cc-resp-must-revalidate-fresh", "An optimal HTTP cache reuses a response with positive `Cache-Control: max-age, must-revalidate`",
               setup_then([["Cache-Control", "max-age=10000, must-revalidate"], ["ETag", '"abcd"']], dict(CACHED), pause=False),
               kind="optimal", depends_on=["freshness-none"]))
    T.append(t("cc-resp-must-revalidate-stale", "HTTP cache must revalidate a stale response with positive `Cache-Control: max-age, must-revalidate`", [
        {"response_headers": [["Cache-Control", "max-age=2, must-revalidate"], ["ETag", '"abcd"']], "setup": True},
        {"expected_type": "cached", "setup": True, "pause_after": True,
         "response_headers": [["Cache-Control", "max-age=2, must-revalidate"], ["ETag", '"abcd"']]},
        {"expected_type": "etag_validated"},
    ], depends_on=["freshness-none"]))
    T.append(t("cc-resp-immutable-fresh", "An optimal HTTP cache reuses a fresh response with `Cache-Control: immutable` without revalidation.", [
        {"response_headers": [["Cache-Control", "max-age=10000, immutable"], ["ETag", '"abcd"']], "setup": True, "pause_after": True},
        {"cache": "no-cache", "expected_type": "cached"},
    ], kind="optimal", browser_only=True))
    T.append(t("cc-resp-immutable-stale", "A HTTP cache MUST revalidate a stale response with `Cache-Control: immutable`", [
        {"response_headers": [["Cache-Control", "max-age=2, immutable"], ["ETag", '"abcd"']], "setup": True, "pause_after": True},
        {"cache": "no-cache", "expected_type": "etag_validated", "expected_request_headers": [["cache-control", "max-age=0"]]},
    ], browser_only=True))
    return {"id": "cc-response", "name": "Cache-Control Response Directives",
            "description": "These tests check how caches handle response `Cache-Control` directives other than those related to freshness, like `no-cache` and `no-store`.",
            "commit": C_MAIN, "tests": T}


def stale():
    """tests/stale.mjs"""
    def stale_cc(cc, shared_only, value=""):
        """A stale-close-<directive> case: stale use forbidden by a directive, origin disconnects."""
        shared = "Shared " if shared_only else ""
        return t(f"stale-close-{cc}{value}", f"{shared}HTTP cache must not serve stale stored response when prohibited by `Cache-Control: {cc}`", [
            {"response_headers": [["Cache-Control", f"max-age=2, {cc}{value}"]], "setup": True, "pause_after": True},
            {"disconnect": True, "expected_status": None, "check_body": False,
             "expected_response_headers_missing": ["server-request-count"]},
        ], depends_on=["stale-close"], browser_skip=shared_only)
    T = [
        t("stale-close", "Does HTTP cache serve stale stored response when server closes the connection?",
          [become_stale(), {"disconnect": True, "expected_type": "cached"}], kind="check", depends_on=["freshness-max-age-stale"]),
        t("stale-503", "Does HTTP cache serve stale stored response when server sends a `503 Service Unavailable`?",
          [become_stale(), {"response_status": [503, "Service Unavailable"], "expected_status": 200, "expected_type": "cached"}],
          kind="check", depends_on=["freshness-max-age-stale"]),
        t("stale-while-revalidate", "An optimal cache serves stale stored response with [`Cache-Control: stale-while-revalidate`](https://httpwg.org/specs/rfc5861.html)", [
            {"setup": True, "pause_after": True, "response_headers": [["Cache-Control", "max-age=1, stale-while-revalidate=3600"], ["ETag", '"abc"']]},
            dict(CACHED)], kind="optimal", depends_on=["freshness-max-age-stale"]),
        t("stale-while-revalidate-window", "HTTP cache must not serve stale stored response after the [`stale-while-revalidate`](https://httpwg.org/specs/rfc5861.html) window", [
            {"setup": True, "pause_after": True, "response_headers": [["Cache-Control", "max-age=1, stale-while-revalidate=4"], ["ETag", '"abc"']]},
            {"setup": True, "pause_after": True, "response_headers": [["Cache-Control", "no-cache", False], ["ETag", '"def"', False]],
             "expected_type": "cached"},
            {"expected_response_headers": [["client-request-count", "3"]]},
        ], depends_on=["stale-while-revalidate"]),
        t("stale-sie-close", "Does HTTP cache serve stale stored response when server sends `Cache-Control: stale-if-error` and subsequently closes the connection?",
          setup_then([["Cache-Control", "max-age=2, stale-if-error=60"]], {"disconnect": True, "expected_type": "cached"}),
          kind="check", depends_on=["freshness-max-age-stale"]),
        t("stale-sie-503", "Does HTTP cache serve stale stored response when server sends `Cache-Control: stale-if-error` and subsequently a `503 Service Unavailable`?",
          setup_then([["Cache-Control", "max-age=2, stale-if-error=60"]], {"disconnect": True, "expected_type": "cached"}),
          kind="check", depends_on=["freshness-max-age-stale"]),
        stale_cc("must-revalidate", False),
        stale_cc("proxy-revalidate", True),
        stale_cc("no-cache", False),
        stale_cc("s-maxage", True, "=2"),
        t("stale-warning-stored", "Does HTTP cache generate a `Warning` header when using a response that was stored already stale?",
          [stale_t(), {"disconnect": True, "expected_type": "cached", "expected_response_headers": ["warning"], "setup_tests": ["expected_type"]}],
          kind="check", depends_on=["stale-close"]),
        t("stale-warning-become", "Does HTTP cache generate a `Warning` header when using a stored response that became stale?",
          [become_stale(), {"disconnect": True, "expected_type": "cached", "expected_response_headers": ["warning"], "setup_tests": ["expected_type"]}],
          kind="check", depends_on=["stale-close"]),
    ]
    return {"id": "stale", "name": "Serving Stale",
            "description": "These tests check how caches serve stale content.",
            "commit": C_MAIN, "tests": T}


def heuristic_freshness():
    """tests/heuristic-freshness.mjs"""
    T = []
    rows = [
        (True, 200, "OK"), (False, 201, "Created"), (False, 202, "Accepted"),
        (True, 203, "Non-Authoritative Information"), (True, 204, "No Content", None),
        (False, 403, "Forbidden"), (True, 404, "Not Found"), (True, 405, "Method Not Allowed"),
        (True, 410, "Gone"), (True, 414, "URI Too Long"), (True, 501, "Not Implemented"),
        (False, 502, "Bad Gateway"), (False, 503, "Service Unavailable"), (False, 504, "Gateway Timeout"),
        (False, 599, "Unknown", "default", "when `Cache-Control: public` is not present", None),
        (True, 599, "Unknown", "default", "when `Cache-Control: public` is present", ["Cache-Control", "public"]),
    ]
    for row in rows:
        succeed, code, phrase = row[:3]
        body = row[3] if len(row) > 3 else "default"
        body = http_content(code) if body == "default" else body
        extra = row[4] if len(row) > 4 else ""
        extra_hdr = row[5] if len(row) > 5 else None
        expected = "cached" if succeed else "not_cached"
        desired = "An optimal HTTP cache should reuse" if succeed else "HTTP cache must not reuse"
        headers = [["Last-Modified", -DAY], ["Date", 0]] + ([extra_hdr] if extra_hdr else [])
        T.append(t(f"heuristic-{code}-{expected}",
                   f"{desired} a `{code} {phrase}` response with `Last-Modified` based upon heuristic freshness {extra}", [
                       {"response_status": [code, phrase], "response_headers": headers, "response_body": body, "setup": True},
                       {"expected_type": expected, "response_status": [code, phrase], "response_body": body},
                   ], kind="optimal" if succeed else "required"))
    for delta in (5, 10, 30, 60, 300, 600, 1200, 1800, 3600, 3600 * 12, 3600 * 24):
        T.append(t(f"heuristic-delta-{delta}", f"Does HTTP cache consider a `Last-Modified` {delta} seconds ago heuristically fresh?",
                   setup_then([["Last-Modified", -delta], ["Date", 0]], dict(CACHED)), kind="check"))
    return {"id": "heuristic", "name": "Heuristic Freshness",
            "description": "These tests check how caches handle heuristic freshness.",
            "commit": C_MAIN, "tests": T}


def method():
    """tests/method.mjs"""
    T = [t("method-POST", "An optimal HTTP cache reuses a stored `POST` response (that has `Content-Location` with the same URL and explicit freshness) for subsequent `GET` requests", [
        {"request_method": "POST", "request_body": "12345", "request_headers": [["Content-Type", "text/plain"]],
         "response_headers": [["Expires", 30 * DAY], ["Content-Location", ""], ["Date", 0]],
         "magic_locations": True, "pause_after": True, "setup": True},
        dict(CACHED)], kind="optimal")]
    return {"id": "method", "name": "Method-related Caching Requirements",
            "description": "These tests check for conformance to method-related requirements that apply to HTTP caches. ",
            "commit": C_METHOD, "tests": T}


def status():
    """tests/status.mjs"""
    T = []
    rows = [(200, "OK"), (203, "Non-Authoritative Information"), (204, "No Content", None), (299, "Whatever"),
            (301, "Moved Permanently"), (302, "Found"), (303, "See Other"), (307, "Temporary Redirect"),
            (308, "Permanent Redirect"), (400, "Bad Request"), (404, "Not Found"), (410, "Gone"),
            (499, "Whatever"), (500, "Internal Server Error"), (502, "Bad Gateway"), (503, "Service Unavailable"),
            (504, "Gateway Timeout"), (599, "Whatever")]
    for row in rows:
        code, phrase = row[:2]
        body = row[2] if len(row) > 2 else http_content(code)
        is3xx = 299 < code < 400
        T.append(t(f"status-{code}-fresh", f"An optimal HTTP cache reuses a fresh `{code}` response with explict freshness", [
            fresh({"response_status": [code, phrase], "response_body": body, "redirect": "manual"}),
            {"expected_type": "cached", "response_status": [code, phrase], "redirect": "manual", "response_body": body},
        ], kind="optimal", depends_on=["freshness-max-age"], browser_skip=is3xx))
        T.append(t(f"status-{code}-stale", f"HTTP cache must not reuse a stale `{code}` response with explicit freshness", [
            stale_t({"response_status": [code, phrase], "response_body": body, "redirect": "manual", "setup": True}),
            {"expected_type": "not_cached", "redirect": "manual", "response_body": body},
        ], depends_on=[f"status-{code}-fresh"], browser_skip=is3xx))
    T.append(t("status-599-must-understand", "HTTP cache must not reuse a fresh response with an unrecognised status code and `Cache-Control: no-store, must-understand`", [
        {"response_status": [599, "Whatever"], "response_headers": [["Cache-Control", "max-age=3600, no-store, must-understand"]], "setup": True},
        dict(NOT_CACHED)], depends_on=["status-599-fresh"]))
    T.append(t("status-200-must-understand", "An optimal HTTP cache reuses a fresh response with a recognised status code and `Cache-Control: no-store, must-understand`", [
        {"response_status": [200, "OK"], "response_headers": [["Cache-Control", "max-age=3600, no-store, must-understand"]], "setup": True},
        dict(CACHED)], kind="optimal", depends_on=["status-200-fresh", "cc-resp-no-store-fresh"]))
    return {"id": "status", "name": "Status Code Cacheability",
            "description": "These tests check to see if a cache will store and reuse various status codes when they have explicit freshness information associated with them.",
            "commit": C_MAIN, "tests": T}


def cc_request():
    """tests/cc-request.mjs"""
    def one(id_, name, first, req_cc, expected, pause=False, first_is_template=False):
        """A cc-request case: a stored response, then a request with a Cache-Control directive."""
        first_req = first if first_is_template else {"response_headers": first, "setup": True}
        if pause and not first_is_template:
            first_req["pause_after"] = True
        return t(id_, name, [first_req, {"request_headers": [["Cache-Control", req_cc]], "expected_type": expected}], kind="check")
    T = [
        one("ccreq-ma0", "Does HTTP cache honor request `Cache-Control: max-age=0` when it holds a fresh response?",
            fresh({"pause_after": True, "setup": True}), "max-age=0", "not_cached", first_is_template=True),
        one("ccreq-ma1", "Does HTTP cache honour request `Cache-Control: max-age=1` when it holds a fresh response?",
            fresh({"pause_after": True, "setup": True}), "max-age=1", "not_cached", first_is_template=True),
        one("ccreq-magreaterage", "Does HTTP cache honour request `Cache-Control: max-age` when it holds a fresh but `Age`d response that is not fresh enough?",
            [["Cache-Control", "max-age=3600"], ["Age", "1800"]], "max-age=600", "not_cached"),
        one("ccreq-max-stale", "Does HTTP cache reuse a stale response when request `Cache-Control: max-stale` allows it?",
            [["Cache-Control", "max-age=1"]], "max-stale=1000", "cached", pause=True),
        one("ccreq-max-stale-age", "Does HTTP cache reuse a stale `Age`d response when request `Cache-Control: max-stale` allows it?",
            [["Cache-Control", "max-age=1500"], ["Age", "2000"]], "max-stale=1000", "cached"),
        one("ccreq-min-fresh", "Does HTTP cache honour request `Cache-Control: min-fresh` when the response it holds is not fresh enough?",
            [["Cache-Control", "max-age=1500"]], "min-fresh=2000", "not_cached"),
        one("ccreq-min-fresh-age", "Does HTTP cache honour request `Cache-Control: min-fresh` when the `Age`d response it holds is not fresh enough?",
            [["Cache-Control", "max-age=1500"], ["Age", "1000"]], "min-fresh=1000", "not_cached"),
        one("ccreq-no-cache", "Does HTTP cache honour request `Cache-Control: no-cache` when it holds a fresh response?",
            [["Cache-Control", "max-age=3600"]], "no-cache", "not_cached"),
        one("ccreq-no-cache-lm", "Does HTTP cache honour request `Cache-Control: no-cache` by validating a response with `Last-Modified`?",
            [["Cache-Control", "max-age=3600"], ["Last-Modified", -10000], ["Date", 0]], "no-cache", "lm_validated"),
        one("ccreq-no-cache-etag", "Does HTTP cache honour request `Cache-Control: no-cache` by validating a response with an `ETag`?",
            [["Cache-Control", "max-age=3600"], ["ETag", http_content("abc")]], "no-cache", "etag_validated"),
        one("ccreq-no-store", "Does HTTP cache honour request `Cache-Control: no-store` when it holds a fresh response?",
            [["Cache-Control", "max-age=3600"]], "no-store", "not_cached"),
        t("ccreq-oic", "Does HTTP cache honour request `Cache-Control: only-if-cached` by generating a `504` response when it does not have a stored response?", [
            {"request_headers": [["Cache-Control", "only-if-cached"]], "expected_status": 504, "expected_response_text": None}], kind="check"),
    ]
    return {"id": "cc-request", "name": "Cache-Control Request Directives",
            "description": "These tests check to see if caches respect `Cache-Control` request directives. Note that HTTP does not require them to be supported.",
            "commit": C_CC_REQUEST, "tests": T}


def pragma():
    """tests/pragma.mjs"""
    T = [
        t("pragma-request-no-cache", "Does HTTP cache use a stored fresh response when request contains `Pragma: no-cache`?", [
            {"response_headers": [["Cache-Control", "max-age=3600"]], "setup": True},
            {"request_headers": [["Pragma", "no-cache"]], "expected_type": "cached"}], kind="check"),
        t("pragma-request-extension", "Does HTTP cache reuse a stored fresh response when request contains `Pragma: unrecognised-extension`?", [
            {"response_headers": [["Cache-Control", "max-age=3600"]], "setup": True},
            {"request_headers": [["Pragma", "unrecognised-extension"]], "expected_type": "cached"}], kind="check"),
        t("pragma-response-no-cache", "Does HTTP cache reuse a stored and otherwise fresh response when it contains `Pragma: no-cache`?",
          setup_then([["Cache-Control", "max-age=3600"], ["Pragma", "no-cache"]], dict(CACHED), pause=False), kind="check"),
        t("pragma-response-no-cache-heuristic", "Does HTTP cache reuse a stored and heuristically fresh response when it contains `Pragma: no-cache`?",
          setup_then([["Last-Modified", -10000], ["Pragma", "no-cache"]], dict(CACHED), pause=False), kind="check"),
        t("pragma-response-extension", "Does HTTP cache use a stored and otherwise fresh response when it contains `Pragma: unrecognised-extension`?",
          setup_then([["Cache-Control", "max-age=3600"], ["Pragma", "unrecognised-extension"]], dict(CACHED), pause=False), kind="check"),
    ]
    return {"id": "pragma", "name": "Pragma",
            "description": "These tests check for how caches handle the [`Pragma` header](https://httpwg.org/specs/rfc7234.html#header.pragma) in reqeusts and responses.",
            "commit": C_PRAGMA, "tests": T}


VARY_SETUP = template({"request_headers": [["Foo", "1"]],
                       "response_headers": [["Cache-Control", "max-age=5000"], ["Last-Modified", -3000], ["Date", 0], ["Vary", "Foo"]],
                       "setup": True})
VARY2_SETUP = template({"request_headers": [["Foo", "1"], ["Bar", "abc"]],
                        "response_headers": [["Cache-Control", "max-age=5000"], ["Last-Modified", -3000], ["Date", 0], ["Vary", "Foo, Bar", False]],
                        "setup": True})
VARY3_SETUP = template({"request_headers": [["Foo", "1"], ["Bar", "abc"], ["Baz", "789"]],
                        "response_headers": [["Cache-Control", "max-age=5000"], ["Last-Modified", -3000], ["Date", 0], ["Vary", "Foo, Bar, Baz", False]],
                        "setup": True})
VARY_STD = [["Cache-Control", "max-age=5000"], ["Last-Modified", -3000], ["Date", 0]]


def vary():
    """tests/vary.mjs"""
    def req(headers, expected, **extra):
        """A request with headers and an expected type."""
        return dict({"request_headers": headers, "expected_type": expected}, **extra)

    def normalise(id_, name, first_hdrs, second_hdrs, vary_on, extra_resp=None):
        """A vary-normalise case: a stored variant and a differently written matching request."""
        return t(id_, name, [
            {"request_headers": first_hdrs, "response_headers": VARY_STD + [["Vary", vary_on]] + (extra_resp or []), "setup": True},
            req(second_hdrs, "cached")], kind="optimal", depends_on=["vary-match"])
    T = [
        t("vary-match", "An optimal HTTP cache reuses a `Vary` response when the request matches",
          [VARY_SETUP(), req([["Foo", "1"]], "cached")], kind="optimal", depends_on=["freshness-max-age"]),
        t("vary-no-match", "HTTP cache must not reuse `Vary` response when request doesn't match",
          [VARY_SETUP(), req([["Foo", "2"]], "not_cached")], depends_on=["vary-match"]),
        t("vary-omit-stored", "HTTP cache must not reuse `Vary` response when stored request omits variant request header", [
            {"response_headers": VARY_STD + [["Vary", "Foo"]], "setup": True}, req([["Foo", "1"]], "not_cached")], depends_on=["vary-match"]),
        t("vary-omit", "HTTP cache must not reuse `Vary` response when presented request omits variant request header",
          [VARY_SETUP(), dict(NOT_CACHED)], depends_on=["vary-match"]),
        t("vary-invalidate", "An optimal HTTP cache can store two different variants", [
            VARY_SETUP({"response_body": http_content("foo_1")}),
            {"request_headers": [["Foo", "2"]], "response_headers": VARY_STD + [["Vary", "Foo"]], "expected_type": "not_cached",
             "response_body": http_content("foo_2"), "setup": True},
            {"request_headers": [["Foo", "1"]], "response_body": http_content("foo_1"), "expected_type": "cached"},
        ], kind="optimal", depends_on=["vary-match"]),
        t("vary-cache-key", "An optimal HTTP cache should not include headers not listed in `Vary` in the cache key",
          [VARY_SETUP({"request_headers": [["Other", "2"]]}), req([["Foo", "1"], ["Other", "3"]], "cached")], kind="optimal", depends_on=["vary-match"]),
        t("vary-2-match", "An optimal HTTP cache reuses a two-way `Vary` response when request matches",
          [VARY2_SETUP(), req([["Foo", "1"], ["Bar", "abc"]], "cached")], kind="optimal", depends_on=["vary-match"]),
        t("vary-2-no-match", "HTTP cache must not reuse two-way `Vary` response when request doesn't match",
          [VARY2_SETUP(), req([["Foo", "2"], ["Bar", "abc"]], "not_cached")], depends_on=["vary-2-match"]),
        t("vary-2-match-omit", "HTTP cache must not reuse two-way `Vary` response when request omits variant request header",
          [VARY2_SETUP(), dict(NOT_CACHED)], depends_on=["vary-2-match"]),
        t("vary-3-match", "An optimal HTTP cache reuses a three-way `Vary` response when request matches",
          [VARY3_SETUP(), req([["Foo", "1"], ["Bar", "abc"], ["Baz", "789"]], "cached")], kind="optimal", depends_on=["vary-2-match"]),
        t("vary-3-no-match", "HTTP cache must not reuse three-way `Vary` response when request doesn't match",
          [VARY3_SETUP(), req([["Foo", "2"], ["Bar", "abc"], ["Baz", "789"]], "not_cached")], depends_on=["vary-3-match"]),
        t("vary-3-order", "HTTP cache must not reuse three-way `Vary` response when request doesn't match, regardless of header order",
          [VARY3_SETUP(), req([["Foo", "1"], ["Baz", "789"], ["Bar", "abcde"]], "not_cached")], depends_on=["vary-3-match"]),
        t("vary-3-omit", "An optimal HTTP cache reuses a three-way `Vary` response when both request and the original request omited a variant header", [
            {"request_headers": [["Foo", "1"], ["Baz", "789"]],
             "response_headers": [["Cache-Control", "max-age=5000"], ["Date", 0], ["Last-Modified", -3000], ["Vary", "Foo, Bar, Baz", False]],
             "setup": True},
            req([["Foo", "1"], ["Baz", "789"]], "cached")], kind="optimal", depends_on=["vary-3-match"]),
        t("vary-star", "HTTP cache must not reuse `Vary` response with a value of `*`", [
            {"request_headers": [["Foo", "1"], ["Baz", "789"]], "response_headers": VARY_STD + [["Vary", "*"]], "setup": True},
            req([["Foo", "1"], ["Baz", "789"]], "not_cached")]),
        normalise("vary-normalise-combine", "An optimal HTTP cache normalises unknown selecting headers by combining fields",
                  [["Foo", "1, 2"]], [["Foo", "1"], ["Foo", "2"]], "Foo"),
        normalise("vary-normalise-lang-order", "An optimal HTTP cache normalises `Accept-Language` by ignoring language order",
                  [["Accept-Language", "en, de"]], [["Accept-Language", "de, en"]], "Accept-Language"),
        normalise("vary-normalise-lang-case", "An optimal HTTP cache normalises `Accept-Language` by ignoring language case",
                  [["Accept-Language", "en, de"]], [["Accept-Language", "eN, De"]], "Accept-Language"),
        normalise("vary-normalise-lang-space", "An optimal HTTP cache normalises `Accept-Language` by ignoring whitespace",
                  [["Accept-Language", "en, de"]], [["Accept-Language", " en ,   de"]], "Accept-Language"),
        normalise("vary-normalise-lang-select", "An optimal HTTP cache selects `Content-Language` by using the qvalue on `Accept-Language`",
                  [["Accept-Language", "en, de"]], [["Accept-Language", "fr;q=0.5, de;q=1.0"]], "Accept-Language", [["Content-Language", "de"]]),
        normalise("vary-normalise-space", "An optimal HTTP cache normalises unknown selecting headers by removing whitespace",
                  [["Foo", "1,2"]], [["Foo", " 1, 2 "]], "Foo"),
    ]
    return {"id": "vary", "name": "Vary and Cache Keys",
            "description": "These tests check how caches calculate a cache key using `Vary`.",
            "commit": C_MAIN, "tests": T}


def vary_parse():
    """tests/vary-parse.mjs"""
    setup = template({"request_headers": [["Foo", "1"], ["Baz", "789"]], "response_headers": VARY_STD, "setup": True})
    rows = [("vary-syntax-star", "`*`", [["Vary", "*", False]]),
            ("vary-syntax-star-star", "`*, *`", [["Vary", "*, *", False]]),
            ("vary-syntax-star-star-lines", "`*, *` on different lines", [["Vary", "*", False], ["Vary", "*", False]]),
            ("vary-syntax-empty-star", "`, *`", [["Vary", ", *", False]]),
            ("vary-syntax-empty-star-lines", "`, *` on different lines", [["Vary", "", False], ["Vary", "*", False]]),
            ("vary-syntax-star-foo", "`*, Foo`", [["Vary", "*, Foo", False]]),
            ("vary-syntax-foo-star", "`Foo, *`", [["Vary", "Foo, *", False]])]
    T = [t(id_, f"HTTP cache must not reuse `Vary` response with a value of {label}", [
        setup({"response_headers": hdrs}),
        {"request_headers": [["Foo", "1"], ["Baz", "789"]], "expected_type": "not_cached"}], depends_on=["vary-match"])
        for id_, label, hdrs in rows]
    return {"id": "vary-parse", "name": "Vary Parsing",
            "description": "These tests check how caches parse the `Vary` response header.",
            "commit": C_MAIN, "tests": T}


def conditional_lm():
    """tests/conditional-lm.mjs"""
    def one(id_, name, max_age, ims, expected, status=304):
        """A conditional-lm case: a stored response, then an If-Modified-Since request."""
        return t(id_, name, [
            {"response_headers": [["Cache-Control", max_age], ["Last-Modified", -3000], ["Date", 0]], "setup": True, "pause_after": True},
            {"request_headers": [["If-Modified-Since", ims]], "magic_ims": True, "expected_type": expected, "expected_status": status},
        ], kind="optimal", browser_skip=True)
    T = [
        one("conditional-lm-fresh", "An optimal HTTP cache responds to `If-Modified-Since` with a `304` when holding a fresh response with a matching `Last-Modified`.",
            "max-age=100000", -3000, "cached"),
        one("conditional-lm-fresh-earlier", "An optimal HTTP cache responds to `If-Modified-Since` with a `304` when holding a fresh response with an earlier `Last-Modified`.",
            "max-age=100000", -2000, "cached"),
        one("conditional-lm-stale", "An optimal HTTP cache responds to `If-Modified-Since` with a `304` when holding a stale response with a matching `Last-Modified`, after validation.",
            "max-age=2", -3000, "lm_validated"),
    ]
    return {"id": "conditional-lm", "name": "Conditional Requests: If-Modified-Since and Last-Modified",
            "description": "Testing of HTTP [conditional requests](https://httpwg.org/specs/rfc7232.html) using `If-Modified-Since` and `Last-Modified`.",
            "commit": C_COND_LM, "tests": T}


def conditional_etag():
    """tests/conditional-etag.mjs"""
    def respond(id_, name, etag, inm, kind="check", dep="conditional-etag-strong-respond", check_etag=None):
        """A conditional-etag case: fresh stored ETag, then an If-None-Match request answered from cache."""
        second = {"request_headers": [["If-None-Match", inm]], "expected_type": "cached", "expected_status": 304}
        if check_etag:
            second["expected_response_headers"] = [["ETag", check_etag]]
        return t(id_, name, [fresh({"response_headers": [["ETag", etag]]}), second], kind=kind, depends_on=[dep], browser_skip=True)

    def generate(id_, name, etag, inm, kind="optimal", dep="freshness-max-age-stale"):
        """A conditional-etag case: stale stored ETag, the cache must send If-None-Match."""
        return t(id_, name, [become_stale({"response_headers": [["ETag", etag]]}),
                             {"expected_request_headers": [["If-None-Match", inm]], "expected_type": "etag_validated"}],
                 kind=kind, depends_on=[dep])
    T = [
        respond("conditional-etag-strong-respond", "An optimal HTTP cache responds to `If-None-Match` with a `304` when holding a fresh response with a matching strong `ETag`",
                '"abcdef"', '"abcdef"', "optimal", "freshness-max-age"),
        respond("conditional-304-etag", "HTTP cache must include `ETag` in a `304 Not Modified`", '"abcdef"', '"abcdef"', "required", check_etag='"abcdef"'),
        t("conditional-etag-precedence", "HTTP cache must give precedence to `If-None-Match` over `If-Modified-Since`", [
            fresh({"response_headers": [["Last-Modified", -5000], ["ETag", '"abcdef"']]}),
            {"request_headers": [["If-None-Match", '"abcdef"'], ["If-Modified-Since", -1]], "magic_ims": True,
             "expected_type": "cached", "expected_status": 304}], depends_on=["conditional-etag-strong-respond"], browser_skip=True),
        respond("conditional-etag-strong-respond-obs-text", "Does HTTP cache respond to `If-None-Match` with a `304` when holding a fresh response with a matching strong `ETag` containing obs-text?",
                '"abcdef\u00fc"', '"abcdef\u00fc"', check_etag='"abcdef\u00fc"'),
        respond("conditional-etag-quoted-respond-unquoted", "Does HTTP cache respond to an unquoted `If-None-Match` with a `304` when holding a fresh response with a matching strong `ETag` that is quoted?",
                '"abcdef"', "abcdef"),
        respond("conditional-etag-unquoted-respond-unquoted", "Does HTTP cache respond to an unquoted `If-None-Match` with a `304` when holding a fresh response with a matching strong `ETag` that is unquoted?",
                "abcdef", "abcdef"),
        respond("conditional-etag-unquoted-respond-quoted", "Does HTTP cache respond to a quoted `If-None-Match` with a `304` when holding a fresh response with a matching strong `ETag` that is unquoted?",
                "abcdef", '"abcdef"'),
        respond("conditional-etag-weak-respond", "An optimal HTTP cache responds to `If-None-Match` with a `304` when holding a fresh response with a matching weak `ETag`",
                'W/"abcdef"', 'W/"abcdef"', "optimal", "freshness-max-age"),
        respond("conditional-etag-weak-respond-lowercase", "Does HTTP cache respond to `If-None-Match` with a `304` when holding a fresh response with a matching weak `ETag`, and the entity-tag weakness flag is lowercase?",
                'w/"abcdef"', 'w/"abcdef"', dep="conditional-etag-weak-respond"),
        respond("conditional-etag-weak-respond-backslash", "Does HTTP cache respond to `If-None-Match` with a `304` when holding a fresh response with a matching weak `ETag`, and the entity-tag weakness flag uses `\\` instead of `/`?",
                'W\\"abcdef"', 'W\\"abcdef"', dep="conditional-etag-weak-respond"),
        respond("conditional-etag-weak-respond-omit-slash", "Does HTTP cache respond to `If-None-Match` with a `304` when holding a fresh response with a matching weak `ETag`, and the entity-tag weakness flag omits `/`?",
                'W"abcdef"', 'W"abcdef"', dep="conditional-etag-weak-respond"),
        respond("conditional-etag-strong-respond-multiple-first", "An optimal HTTP cache responds to `If-None-Match` with a `304` when it contains multiple entity-tags (first one)",
                '"abcdef"', '"abcdef", "1234", "5678"', "optimal"),
        respond("conditional-etag-strong-respond-multiple-second", "An optimal HTTP cache responds to `If-None-Match` with a `304` when it contains multiple entity-tags (middle one)",
                '"abcdef"', '"1234", "abcdef", "5678"', "optimal"),
        respond("conditional-etag-strong-respond-multiple-last", "An optimal HTTP cache responds to `If-None-Match` with a `304` when it contains multiple entity-tags (last one)",
                '"abcdef"', '"1234", "5678", "abcdef"', "optimal"),
        t("conditional-etag-vary-headers", "HTTP cache must include stored response headers identified by `Vary` in a conditional request it generates", [
            {"request_headers": [["Abc", "123"]], "response_headers": [["Expires", 1], ["ETag", '"abcdef"'], ["Date", 0], ["Vary", "Abc"]],
             "setup": True, "pause_after": True},
            {"request_headers": [["Abc", "123"]], "expected_type": "etag_validated", "expected_request_headers": [["Abc", "123"]],
             "setup_tests": ["expected_type"]}]),
        t("conditional-etag-vary-headers-mismatch", "Does HTTP cache use a stored `ETag` to validate when the presented `Vary`ing request header differs?", [
            {"request_headers": [["Abc", "123"]], "response_headers": [["Expires", 10000], ["ETag", '"abcdef"'], ["Date", 0], ["Vary", "Abc"]],
             "setup": True, "pause_after": True},
            {"request_headers": [["Abc", "456"]], "expected_request_headers": [["If-None-Match", '"abcdef"']]}],
          kind="check", depends_on=["conditional-etag-vary-headers", "vary-no-match"]),
        generate("conditional-etag-strong-generate", "An optimal HTTP cache generates a `If-None-Match` request when holding a stale response with a matching strong `ETag`",
                 '"abcdef"', '"abcdef"'),
        generate("conditional-etag-weak-generate-weak", "An optimal HTTP cache generates a `If-None-Match` request when holding a stale response with a matching weak `ETag`",
                 'W/"abcdef"', 'W/"abcdef"'),
        generate("conditional-etag-strong-generate-unquoted", "Does HTTP cache generate a quoted `If-None-Match` request when holding a stale response with a matching, unquoted strong `ETag`?",
                 "abcdef", '"abcdef"', "check", "conditional-etag-strong-generate"),
        t("conditional-etag-forward", "Does HTTP cache forward `If-None-Match` request header when no stored response is available?", [
            {"request_headers": [["If-None-Match", '"abcdef"']], "expected_request_headers": [["If-None-Match", '"abcdef"']]}], kind="check"),
        t("conditional-etag-forward-unquoted", "Does HTTP cache add quotes to an unquoted `If-None-Match` request when forwarding it?", [
            {"request_headers": [["If-None-Match", "abcdef"]], "expected_request_headers": [["If-None-Match", '"abcdef"']]}],
          kind="check", depends_on=["conditional-etag-forward"]),
    ]
    return {"id": "conditional-inm", "name": "Conditional Requests: If-None-Match and ETag",
            "description": "These tests check handling of conditional requests using `If-None-Match` and `ETag`.",
            "commit": C_COND_ETAG, "tests": T}


# tests/header-list.mjs (name, valA, valB, flags)
HEADER_LIST = [
    {"name": "Test-Header", "reqUpdate": True},
    {"name": "X-Test-Header", "reqUpdate": True},
    {"name": "Content-Foo", "reqUpdate": True},
    {"name": "X-Content-Foo", "reqUpdate": True},
    {"name": "Cache-Control", "valA": "max-age=1", "valB": "max-age=3600", "reqUpdate": True},
    {"name": "Connection", "noStore": True},
    {"name": "Content-Encoding"},
    {"name": "Content-Length", "valA": "5", "valB": "10", "noUpdate": True, "checkBody": False},
    {"name": "Content-Location", "valA": "/foo", "valB": "/bar"},
    {"name": "Content-MD5", "valA": "rL0Y20zC+Fzt72VPzMSk2A==", "valB": "N7UdGUp1E+RbVvZSTy1R8g=="},
    {"name": "Content-Range"},
    {"name": "Content-Security-Policy", "valA": "default-src 'self'", "valB": "default-src 'self' cdn.example.com"},
    {"name": "Content-Type", "valA": "text/plain", "valB": "text/plain;charset=utf-8"},
    {"name": "Clear-Site-Data", "valA": "cache", "valB": "cookies"},
    {"name": "ETag", "valA": '"abcdef"', "valB": '"ghijkl"'},
    {"name": "Expires", "valA": "Fri, 01 Jan 2038 01:01:01 GMT", "valB": "Mon, 11 Jan 2038 11:11:11 GMT"},
    {"name": "Keep-Alive", "noStore": True},
    {"name": "Proxy-Authenticate", "noStore": True},
    {"name": "Proxy-Authentication-Info", "noStore": True},
    {"name": "Proxy-Authorization", "noStore": True},
    {"name": "Proxy-Connection", "noStore": True},
    {"name": "Public-Key-Pins"},
    {"name": "Set-Cookie", "valA": "a=b", "valB": "a=c"},
    {"name": "Set-Cookie2", "valA": "a=b", "valB": "a=c"},
    {"name": "TE", "noStore": True},
    {"name": "Transfer-Encoding", "noStore": True},
    {"name": "Upgrade", "noStore": True},
    {"name": "X-Frame-Options", "valA": "deny", "valB": "sameorigin"},
    {"name": "X-XSS-Protection", "valA": "1", "valB": "1; mode=block"},
]


def headers():
    """tests/headers.mjs"""
    T = [t("headers-omit-headers-listed-in-Connection", "`Connection` header must inhibit a HTTP cache from storing listed headers", [
        fresh({"response_headers": [["Connection", "a, b", False], ["a", "1", False], ["b", "2", False], ["c", "3", False]]}),
        {"expected_type": "cached", "expected_response_headers": [["c", "3"]], "expected_response_headers_missing": ["a", "b"],
         "setup_tests": ["expected_type", "expected_response_headers"]}], depends_on=["freshness-max-age"])]
    for cfg in HEADER_LIST:
        name = cfg["name"]
        value = cfg.get("valB", http_content(f"{name}-store-value"))
        store = not cfg.get("noStore", False)
        check_body = cfg.get("checkBody", True)
        resp = [["Date", 0], [name, value, store]]
        if name != "Cache-Control":
            resp.append(["Cache-Control", "max-age=3600"])
        T.append(t(f"headers-store-{name}", f"HTTP cache {'must' if store else 'must not'} store `{name}` header field", [
            {"response_headers": resp, "setup": True, "pause_after": True, "check_body": check_body},
            {"expected_type": "cached", "expected_response_headers": [[name, value]] if store else [],
             "expected_response_headers_missing": [] if store else [[name, value]],
             "setup_tests": ["expected_type"], "check_body": check_body}], depends_on=["freshness-max-age"]))
    return {"id": "headers", "name": "Storing Header Fields",
            "description": "These tests examine how caches store headers in responses.",
            "commit": C_MAIN, "extra_sources": [{"path": "tests/header-list.mjs", "commit": C_HEADER_LIST}], "tests": T}


def update304():
    """tests/update304.mjs"""
    stored = "Test-Header"
    value_a = http_content(f"{stored}-value-A")
    lm1 = "Wed, 01 Jan 2020 00:00:00 GMT"
    T = [t(f"304-lm-use-stored-{stored}", f"HTTP cache must return stored `{stored}` from a `304` that omits it", [
        {"response_headers": [["Cache-Control", "max-age=2"], ["Last-Modified", lm1], ["Date", 0], [stored, value_a]], "setup": True, "pause_after": True},
        {"response_headers": [["Last-Modified", lm1], ["Date", 0]], "expected_type": "lm_validated",
         "expected_response_headers": [[stored, value_a]], "setup_tests": ["expected_type"]}])]

    def response(cfg, value, validator=None, validator_value=None):
        """The origin's response fields for one update304 request."""
        rh = [["Date", 0], [cfg["name"], value, not cfg.get("noUpdate", False)]]
        if cfg["name"] != "Cache-Control":
            rh.append(["Cache-Control", "max-age=2"])
        if validator and validator != cfg["name"]:
            rh.append([validator, validator_value])
        return rh
    for cfg in HEADER_LIST:
        if cfg.get("noStore"):
            continue
        name = cfg["name"]
        val_a = cfg.get("valA") or http_content(f"{name}-value-A")
        val_b = cfg.get("valB") or http_content(f"{name}-value-B")
        if cfg.get("noUpdate"):
            expected, requirement, punct, kind = val_a, "HTTP cache must not", "", "required"
        elif cfg.get("reqUpdate"):
            expected, requirement, punct, kind = val_b, "HTTP cache must", "", "required"
        else:
            expected, requirement, punct, kind = val_b, "Does HTTP cache", "?", "check"
        etag = '"%s"' % http_content(f"{name}-etag-1")
        check_body = cfg.get("checkBody", True)
        T.append(t(f"304-etag-update-response-{name}", f"{requirement} update and return `{name}` from a `304`{punct}", [
            {"response_headers": response(cfg, val_a, "ETag", etag), "setup": True, "pause_after": True, "check_body": check_body},
            {"response_headers": response(cfg, val_b, "ETag", etag), "expected_type": "etag_validated", "setup_tests": ["expected_type"],
             "expected_response_headers": [[name, expected]], "check_body": check_body},
            {"response_headers": response(cfg, expected), "expected_type": "cached", "setup_tests": ["expected_type"],
             "expected_response_headers": [[name, expected]], "check_body": check_body},
        ], kind=kind, depends_on=[f"304-lm-use-stored-{stored}"]))
    return {"id": "update304", "name": "Update Headers Upon a 304",
            "description": "These tests check cache behaviour upon receiving a `304 Not Modified` response.",
            "commit": C_MAIN, "extra_sources": [{"path": "tests/header-list.mjs", "commit": C_HEADER_LIST}], "tests": T}


def update_head():
    """tests/update-head.mjs"""
    head = {"request_method": "HEAD", "expected_method": "HEAD"}
    T = [
        t("head-writethrough", "Does HTTP cache write through a HEAD when stored response is stale?",
          [become_stale(), dict(head)], kind="check", depends_on=["freshness-max-age-stale"]),
        t("head-200-retain", "Does HTTP cache preserve stored fields not received in a `200` response to a `HEAD`?",
          [become_stale(), dict(head, expected_response_headers=[["Template-A", "1"]])], kind="check", depends_on=["head-writethrough"]),
        t("head-200-freshness-update", "Does HTTP cache update freshness lifetime recieved in a `200` response to a `HEAD`?",
          [become_stale(), dict(head, response_headers=[["Cache-Control", "max-age=1000"]]), dict(CACHED)],
          kind="check", depends_on=["head-writethrough"]),
        t("head-200-update", "Does HTTP cache update stored fields recieved in a `200` response to a `HEAD`?",
          [become_stale(), dict(head, response_headers=[["Template-A", "2"], ["Cache-Control", "max-age=1000"]]),
           {"expected_type": "cached", "setup_tests": ["expected_type"], "expected_response_headers": [["Template-A", "2"]]}],
          kind="check", depends_on=["head-200-freshness-update"]),
        t("head-410-update", "Does HTTP cache update stored fields recieved in a `410` response to a `HEAD`?",
          [become_stale(), dict(head, response_status=[410, "Gone"], response_headers=[["Template-A", "2"], ["Cache-Control", "max-age=1000"]]),
           {"expected_type": "cached", "setup_tests": ["expected_type"], "expected_response_headers": [["Template-A", "2"]]}],
          kind="check", depends_on=["head-200-freshness-update"]),
    ]
    return {"id": "update-head", "name": "HEAD updates",
            "description": "These tests check how a cache updates stored responses when receiving a `HEAD` response.",
            "commit": C_UPDATE_HEAD, "tests": T}


def invalidation():
    """tests/invalidation.mjs"""
    content_location = template({"filename": "content_location_target",
                                 "response_headers": [["Cache-Control", "max-age=100000"], ["Last-Modified", 0], ["Date", 0]]})
    location = template({"filename": "location_target",
                         "response_headers": [["Cache-Control", "max-age=100000"], ["Last-Modified", 0], ["Date", 0]]})
    lcl = template({"response_headers": [["Location", "location_target"], ["Content-Location", "content_location_target"]],
                    "magic_locations": True})
    methods = ["POST", "PUT", "DELETE", "M-SEARCH"]
    T = []
    for m in methods:
        T.append(t(f"invalidate-{m}", f"HTTP cache must invalidate the URL after a successful response to a `{m}` request",
                   [fresh(), {"request_method": m, "request_body": "abc", "setup": True}, dict(NOT_CACHED)], depends_on=["freshness-max-age"]))
        T.append(t(f"invalidate-{m}-failed", f"An optimal HTTP cache does not invalidate the URL after a failed response to a `{m}` request",
                   [fresh(), {"request_method": m, "request_body": "abc", "response_status": [500, "Internal Server Error"], "setup": True}, dict(CACHED)],
                   kind="optimal", depends_on=[f"invalidate-{m}"]))
    for m in methods:
        T.append(t(f"invalidate-{m}-location", f"Does HTTP cache invalidate `Location` URL after a successful response to a `{m}` request?",
                   [location({"setup": True}), lcl({"request_method": m, "request_body": "abc", "setup": True}), location({"expected_type": "not_cached"})],
                   kind="check", depends_on=[f"invalidate-{m}"]))
    for m in methods:
        T.append(t(f"invalidate-{m}-cl", f"Does HTTP cache must invalidate `Content-Location` URL after a successful response to a `{m}` request?",
                   [content_location({"setup": True}), lcl({"request_method": m, "request_body": "abc", "setup": True}),
                    content_location({"expected_type": "not_cached"})],
                   kind="check", depends_on=[f"invalidate-{m}"]))
    return {"id": "invalidation", "name": "Cache Invalidation",
            "description": "These tests check how caches support  invalidation, including when it is triggered by the `Location` and `Content-Location` response headers.",
            "commit": C_MAIN, "tests": T}


def partial():
    """tests/partial.mjs"""
    def stored_partial(range_, cr, extra=None):
        """A setup request whose origin answers 206 for a Range request."""
        r = {"request_headers": [["Range", range_]], "response_status": [206, "Partial Content"],
             "response_headers": [["Cache-Control", "max-age=3600"], ["Content-Range", cr]], "response_body": "01234", "setup": True}
        r.update(extra or {})
        return r

    def complete(body, extra_headers=None):
        """A setup request whose origin answers 200 with a complete body."""
        return {"response_headers": [["Cache-Control", "max-age=3600"]] + (extra_headers or []), "response_body": body, "setup": True}

    def ranged(range_, text, **extra):
        """A Range request expected to be answered 206 from cache."""
        return dict({"request_headers": [["Range", range_]], "expected_type": "cached", "expected_status": 206,
                     "expected_response_text": text}, **extra)
    opt = {"kind": "optimal", "depends_on": ["freshness-max-age"]}
    T = [
        t("partial-store-partial-reuse-partial", "An optimal HTTP cache stores partial content and reuses it",
          [stored_partial("bytes=-5", "bytes 4-9/10", {"expected_request_headers": [["Range", "bytes=-5"]]}), ranged("bytes=-5", "01234")], **opt),
        t("partial-store-complete-reuse-partial", "An optimal HTTP cache stores complete responses and serves smaller ranges from them (byte-range-spec)",
          [complete("01234567890"), ranged("bytes=0-1", "01")], **opt),
        t("partial-store-complete-reuse-partial-no-last", "An optimal HTTP cache stores complete responses and serves smaller ranges from them (absent last-byte-pos)",
          [complete("01234567890"), ranged("bytes=1-", "1234567890")], **opt),
        t("partial-store-complete-reuse-partial-suffix", "An optimal HTTP cache stores complete responses and serves smaller ranges from them (suffix-byte-range-spec)",
          [complete("0123456789A"), ranged("bytes=-1", "A")], **opt),
        t("partial-store-partial-reuse-partial-byterange", "An optimal HTTP cache stores partial responses and serves smaller ranges from them (byte-range-spec)",
          [stored_partial("bytes=-5", "bytes 4-9/10"), ranged("bytes=6-8", "234")], **opt),
        t("partial-store-partial-reuse-partial-absent", "An optimal HTTP cache stores partial responses and serves smaller ranges from them (absent last-byte-pos)",
          [stored_partial("bytes=-5", "bytes 4-9/10"), ranged("bytes=6-", "234")], **opt),
        t("partial-store-partial-reuse-partial-suffix", "An optimal HTTP cache stores partial responses and serves smaller ranges from them (suffix-byte-range-spec)",
          [stored_partial("bytes=-5", "bytes 4-9/10"), ranged("bytes=-1", "4")], **opt),
        t("partial-store-partial-complete", "An optimal HTTP cache stores partial content and completes it",
          [stored_partial("bytes=-5", "bytes 0-4/10"), {"expected_request_headers": [["range", "bytes=5-"]]}], **opt),
        t("partial-use-headers", "HTTP cache must use header fields from the new response", [
            complete("01234567890", [["A", "1"]]),
            ranged("bytes=0-1", "01", setup_tests=["expected_type", "expected_status", "expected_response_text"], response_headers=[["A", "2"]])],
          depends_on=["partial-store-complete-reuse-partial"]),
        t("partial-use-stored-headers", "HTTP cache must preserve unupdated header fields from the stored response", [
            complete("01234567890", [["A", "1"]]),
            ranged("bytes=0-1", "01", setup_tests=["expected_type", "expected_status", "expected_response_text"], expected_response_headers=[["A", "1"]])],
          depends_on=["partial-store-complete-reuse-partial"]),
    ]
    return {"id": "partial", "name": "Combining Partial Content",
            "description": "These tests check how caches handle partial content (also known as `Range` requests).",
            "commit": C_MAIN, "tests": T}


def authorization():
    """tests/authorization.mjs"""
    auth = {"request_headers": [["Authorization", "FOO"]], "expected_request_headers": [["Authorization", "FOO"]]}

    def reuse(id_, name, cc):
        """An authorization case: an authenticated request whose response the cache may reuse."""
        return t(id_, name, [dict(auth, response_headers=[["Cache-Control", cc], ["Date", 0]], pause_after=True, setup=True), dict(CACHED)],
                 kind="optimal", depends_on=["other-authorization"], browser_skip=True)
    T = [
        t("other-authorization", "HTTP shared cache must not reuse a response to a request that contained `Authorization`, even with explicit freshness",
          [fresh(auth), dict(NOT_CACHED)], depends_on=["freshness-max-age"], browser_skip=True),
        reuse("other-authorization-public", "An optimal HTTP shared cache reuses a response to a request that contained `Authorization`, if it has `Cache-Control: public`",
              "max-age=3600, public"),
        reuse("other-authorization-must-revalidate", "An optimal HTTP shared cache reuses a response to a request that contained `Authorization`, if it has `Cache-Control: must-revalidate`",
              "max-age=3600, must-revalidate"),
        reuse("other-authorization-smaxage", "An optimal HTTP shared cache reuses a response to a request that contained `Authorization`, if it has `Cache-Control: s-maxage`",
              "s-maxage=3600"),
    ]
    return {"id": "auth", "name": "Storing Respones to Authenticated Requests",
            "description": "These tests check for behaviours regarding authenticated HTTP responses.",
            "commit": C_MAIN, "tests": T}


def other():
    """tests/other.mjs"""
    cd = ["Content-Disposition", "attachment; filename=example.txt"]
    T = [
        t("other-age-gen", "HTTP cache must generate an `Age` header field when using a stored response.",
          [fresh(), {"expected_type": "cached", "expected_response_headers": [["Age", ">", 2]]}], depends_on=["freshness-max-age"]),
        t("other-age-delay", "Does HTTP cache insert an `Age` header field when there is delay generating the response?", [
            {"response_headers": [["Cache-Control", "max-age=3600"], ["Date", 0]], "response_pause": 5,
             "expected_response_headers": [["age", ">", 0]]}], kind="check"),
        t("other-age-update-expires", "HTTP cache must update the `Age` header field when freshness is based upon `Expires`",
          setup_then([["Expires", 30 * DAY], ["Date", 0], ["Age", "30"]], {"expected_type": "cached", "expected_response_headers": [["Age", ">", 32]]}),
          depends_on=["freshness-expires-future"]),
        t("other-age-update-max-age", "HTTP cache must update the `Age` header field when freshness is based upon `CC: max-age`",
          [fresh({"response_headers": [["Age", "30"]]}), {"expected_type": "cached", "expected_response_headers": [["Age", ">", 32]]}],
          depends_on=["freshness-max-age"]),
        t("other-date-update", "HTTP cache must not update the `Date` header field",
          [fresh(), {"expected_type": "cached", "expected_response_headers": [["Date", 0]]}], depends_on=["freshness-max-age"]),
        t("other-date-update-expires", "HTTP cache must not update the `Date` header field when `Expires` is present",
          setup_then([["Expires", 30 * DAY], ["Date", 0]], {"expected_type": "cached", "expected_response_headers": [["Date", 0]]}),
          depends_on=["freshness-expires-future"]),
        t("other-date-update-expires-update", "Does HTTP cache leave the `Expires` header field alone?",
          setup_then([["Expires", 30 * DAY], ["Date", 0]], {"expected_type": "cached", "expected_response_headers": [["Expires", 30 * DAY]]}),
          kind="check", depends_on=["freshness-expires-future"]),
        t("query-args-different", "Different query arguments must be different cache keys", [
            fresh({"query_arg": "test=" + http_content("query-args-different-1")}),
            {"query_arg": "test=" + http_content("query-args-different-2"), "expected_type": "not_cached"}], depends_on=["freshness-max-age"]),
        t("query-args-same", "An optimal HTTP cache should not be affected by the presence of a URL query", [
            fresh({"query_arg": "test=" + http_content("query-args-same")}),
            {"query_arg": "test=" + http_content("query-args-same"), "expected_type": "cached"}], kind="optimal", depends_on=["freshness-max-age"]),
        t("other-heuristic-content-disposition-attachment", "Does HTTP heuristically cache a response with a `Content-Disposition: attachment` header?",
          setup_then([["Last-Modified", -100000], ["Date", 0], cd], dict(CACHED), pause=False), kind="check", depends_on=["heuristic-200-cached"]),
        t("other-fresh-content-disposition-attachment", "Does HTTP reuse a fresh response with a `Content-Disposition: attachment` header?",
          [fresh({"response_headers": [cd]}), dict(CACHED)], kind="check", depends_on=["freshness-max-age"]),
        t("other-set-cookie", "An optimal HTTP cache reuses a fresh response with a `Set-Cookie` header",
          [fresh({"response_headers": [["Set-Cookie", "a=b"]]}), dict(CACHED)], kind="optimal", depends_on=["freshness-max-age"]),
        t("other-cookie", "An optimal HTTP cache reuses a fresh response when the request has a `Cookie` header",
          [fresh(), {"request_headers": [["Cookie", "a=b"]], "expected_type": "cached"}], kind="optimal", depends_on=["freshness-max-age"]),
    ]
    return {"id": "other", "name": "Other Caching Requirements",
            "description": "These tests check miscellaneous HTTP cache behaviours. ",
            "commit": C_MAIN, "tests": T}


def cdn_cache_control():
    """tests/cdn-cache-control.mjs"""
    def one(id_, name, headers, expect, kind="required", dep="cdn-max-age", pause=True):
        """A cdn-cache-control case: one setup response, then the checked request."""
        return t(id_, name, setup_then(headers, dict(expect), pause=pause), kind=kind,
                 depends_on=[dep] if dep else None, cdn_only=True)
    cdn = "CDN-Cache-Control"
    T = [
        one("cdn-max-age", "An optimal CDN reuses a response with positive `CDN-Cache-Control: max-age`", [[cdn, "max-age=3600", False]], CACHED, "optimal", "freshness-none"),
        one("cdn-max-age-max", "An optimal CDN reuses a response with `CDN-Cache-Control: max-age: 2147483648`", [[cdn, "max-age=2147483648", False]], CACHED, "optimal", "freshness-none"),
        one("cdn-max-age-max-plus", "An optimal CDN reuses a response with `CDN-Cache-Control: max-age: 99999999999`", [[cdn, "max-age=99999999999", False]], CACHED, "optimal", "freshness-none"),
        one("cdn-max-age-age", "CDN must not reuse a response when the `Age` header is greater than its `CDN-Cache-Control: max-age` freshness lifetime",
            [["Date", 0], [cdn, "max-age=3600", False], ["Age", "7200"]], NOT_CACHED),
        one("cdn-max-age-space-before-equals", "Does CDN ignore `CDN-Cache-Control: max-age` with space before the `=`?",
            [["Cache-Control", "max-age=1"], [cdn, "max-age =100", False]], NOT_CACHED, "check"),
        one("cdn-max-age-space-after-equals", "Does CDN ignore `CDN-Cache-Control: max-age` with space after the `=`?",
            [["Cache-Control", "max-age=1"], [cdn, "max-age= 100", False]], NOT_CACHED, "check"),
        one("cdn-max-age-0", "CDN must not reuse a response with `CDN-Cache-Control: max-age=0`", [[cdn, "max-age=0", False]], NOT_CACHED),
        one("cdn-max-age-extension", "An optimal CDN reuses a response with a positive `CDN-Cache-Control: max-age` and an extension cache directive",
            [[cdn, "foobar, max-age=3600", False]], CACHED, "optimal"),
        one("cdn-max-age-case-insensitive", "Does CDN reuse a response with a positive `CDN-Cache-Control: MaX-aGe`?", [[cdn, "MaX-aGe=3600", False]], CACHED, "check"),
        one("cdn-max-age-expires", "An optimal CDN reuses a response with a positive `CDN-Cache-Control: max-age` and a past `Expires`",
            [[cdn, "max-age=3600", False], ["Expires", -10000], ["Date", 0]], CACHED, "optimal"),
        one("cdn-max-age-cc-max-age-invalid-expires", "An optimal CDN reuses a response with a positive `CDN-Cache-Control: max-age` and an invalid `Expires`",
            [[cdn, "max-age=3600", False], ["Expires", "0", False], ["Date", 0]], CACHED, "optimal"),
        one("cdn-max-age-0-expires", "CDN must not reuse a response with a `CDN-Cache-Control: max-age=0` and a future `Expires`",
            [[cdn, "max-age=0", False], ["Expires", 10000], ["Date", 0]], NOT_CACHED),
        one("cdn-max-age-short-cc-max-age", "An optimal CDN prefers a long `CDN-Cache-Control: max-age` over a short `Cache-Control: max-age`",
            [["Cache-Control", "max-age=1"], [cdn, "max-age=3600", False]], CACHED, "optimal"),
        one("cdn-max-age-long-cc-max-age", "CDN must prefer a short `CDN-Cache-Control: max-age` over a long `Cache-Control: max-age`",
            [["Cache-Control", "max-age=3600"], [cdn, "max-age=1", False]], NOT_CACHED),
        one("cdn-private", "CDN must not reuse a cached response with `CDN-Cache-Control: private`, even with `Cache-Control: max-age` and `Expires`",
            [[cdn, "private"], ["Cache-Control", "max-age=10000"], ["Expires", 10000], ["Date", 0]], NOT_CACHED, dep=None, pause=False),
        one("cdn-no-cache", "CDN must not reuse a cached response with `CDN-Cache-Control: no-cache`, even with `Cache-Control: max-age` and `Expires`",
            [[cdn, "no-cache"], ["Cache-Control", "max-age=10000"], ["Expires", 10000], ["Date", 0]], NOT_CACHED, dep=None, pause=False),
        one("cdn-no-store-cc-fresh", "CDN must not store a response with `CDN-Cache-Control: no-store`, even with `Cache-Control: max-age` and `Expires`",
            [["Cache-Control", "max-age=10000"], [cdn, "no-store", False], ["Expires", 10000], ["Date", 0]], NOT_CACHED, dep="freshness-none"),
        one("cdn-fresh-cc-nostore", "An optimal CDN stores a response with a fresh `CDN-Cache-Control: max-age`, even with `Cache-Control: no-store`",
            [["Cache-Control", "no-store"], [cdn, "max-age=10000", False]], CACHED, dep="freshness-none"),
        one("cdn-cc-invalid-sh-type-unknown", "CDN should ignore a `CDN-Cache-Control` that's an invalid Structured Field (unknown type)",
            [[cdn, "max-age=10000, &&&&&", False], ["Cache-Control", "no-store"]], NOT_CACHED),
        one("cdn-cc-invalid-sh-type-wrong", "CDN should ignore a `CDN-Cache-Control` that's an invalid Structured Field (wrong type)",
            [[cdn, 'max-age="10000"', False], ["Cache-Control", "no-store"]], NOT_CACHED),
        t("cdn-remove-header", "Does the CDN forward the `CDN-Cache-Control` response header?", [
            {"response_headers": [["Cache-Control", "max-age=10000"], [cdn, "foo", False], ["Expires", 10000], ["Date", 0]],
             "expected_response_headers": [[cdn, "foo"]]}], kind="check", cdn_only=True),
        t("cdn-remove-age-exceed", "Does the CDN send `Age` when `CDN-Cache-Control: max-age` exceeds `Cache-Control: max-age`?",
          setup_then([["Cache-Control", "max-age=1"], [cdn, "max-age=10000"], ["Date", 0]], {"expected_response_headers": ["Age"]}),
          kind="check", depends_on=["cdn-max-age"], cdn_only=True),
        t("cdn-date-update-exceed", "Does the CDN preserve `Date` when `CDN-Cache-Control: max-age` exceeds `Cache-Control: max-age`?",
          setup_then([["Cache-Control", "max-age=1"], [cdn, "max-age=10000"], ["Date", 0]], {"expected_response_headers": [["Date", 0]]}),
          kind="check", depends_on=["cdn-max-age"], cdn_only=True),
        t("cdn-expires-update-exceed", "Does the CDN preserve `Expires` when `CDN-Cache-Control: max-age` exceeds `Cache-Control: max-age`?",
          setup_then([["Cache-Control", "max-age=1"], ["Expires", 1], [cdn, "max-age=10000"], ["Date", 0]], {"expected_response_headers": [["Expires", 1]]}),
          kind="check", depends_on=["cdn-max-age"], cdn_only=True),
    ]
    return {"id": "cdn-cache-control", "name": "CDN-Cache-Control",
            "description": "These tests check non-browser caches for behaviours around the [`CDN-Cache-Control` response header](https://httpwg.org/specs/rfc9213.html).",
            "commit": C_MAIN, "tests": T}


def interim():
    """tests/interim.mjs"""
    hints = [103, [["link", "</styles.css>; rel=preload; as=style"], ["x-my-header", "test"]]]
    final = [["Cache-Control", "max-age=100000"], ["Date", 0]]
    T = [
        t("interim-102", "An optimal HTTP cache passes a 102 response through and caches the final response", [
            {"interim_responses": [[102]], "expected_interim_responses": [[102]], "response_headers": final, "pause_after": True},
            dict(CACHED)], kind="optimal", browser_skip=True),
        t("interim-103", "An optimal HTTP cache passes a 103 response through and caches the final response", [
            {"interim_responses": [hints], "expected_interim_responses": [hints], "response_headers": final, "pause_after": True},
            dict(CACHED)], kind="optimal", browser_skip=True),
        t("interim-not-cached", "An HTTP cache should not cache non-final responses", [
            {"interim_responses": [[103, [["link", "</styles.css>; rel=preload; as=style"]]]],
             "expected_interim_responses": [[103, [["link", "</styles.css>; rel=preload; as=style"]]]],
             "response_headers": final, "pause_after": True},
            {"expected_type": "cached", "expected_interim_responses": []}], browser_skip=True),
        t("interim-no-header-reuse", "An optimal HTTP cache should not store headers from non-final responses", [
            {"interim_responses": [hints], "expected_interim_responses": [hints], "response_headers": final,
             "expected_response_headers_missing": ["x-my-header"], "pause_after": True},
            {"expected_type": "cached", "expected_response_headers_missing": ["x-my-header"]}], kind="optimal", browser_skip=True),
    ]
    return {"id": "interim", "name": "Interim Response Handling",
            "description": "These tests check how caches handle interim responses.",
            "commit": C_MAIN, "tests": T}


BUILDERS = {
    "cc-freshness": cc_freshness, "cc-parse": cc_parse, "age-parse": age_parse,
    "expires-freshness": expires_freshness, "expires-parse": expires_parse, "cc-response": cc_response,
    "stale": stale, "heuristic-freshness": heuristic_freshness, "method": method, "status": status,
    "cc-request": cc_request, "pragma": pragma, "vary": vary, "vary-parse": vary_parse,
    "conditional-lm": conditional_lm, "conditional-etag": conditional_etag, "headers": headers,
    "update304": update304, "update-head": update_head, "invalidation": invalidation, "partial": partial,
    "authorization": authorization, "other": other, "cdn-cache-control": cdn_cache_control, "interim": interim,
}


def main():
    """Write one JSON file per suite file, plus index.json with the run order."""
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cases")
    os.makedirs(out_dir, exist_ok=True)
    seen = {}
    index = []
    for file_id in ORDER:
        suite = BUILDERS[file_id]()
        ids = [case["id"] for case in suite["tests"]]
        for case_id in ids:
            if case_id in seen:
                raise SystemExit(f"duplicate test id {case_id} in {file_id} and {seen[case_id]}")
            seen[case_id] = file_id
        sources = [{"path": f"tests/{file_id}.mjs", "commit": suite.pop("commit")}]
        sources += suite.pop("extra_sources", [])
        sources.append({"path": "tests/lib/templates.mjs", "commit": C_TEMPLATES, "note": "shared request templates (fresh, stale, becomeStale)"})
        doc = {"suite": {"id": suite["id"], "name": suite["name"], "description": suite["description"],
                         "file": f"tests/{file_id}.mjs", "repository": REPO, "sources": sources},
               "tests": suite["tests"]}
        with open(os.path.join(out_dir, f"{file_id}.json"), "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, ensure_ascii=True)
            fh.write("\n")
        index.append({"file": f"{file_id}.json", "suite": suite["id"], "cases": len(ids)})
    with open(os.path.join(out_dir, "index.json"), "w", encoding="utf-8") as fh:
        json.dump({"repository": REPO, "order": index}, fh, indent=1)
        fh.write("\n")
    print(f"wrote {len(index)} files, {len(seen)} cases")


if __name__ == "__main__":
    main()
