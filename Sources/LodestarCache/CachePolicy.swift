/// What a shared cache knows about one stored response.
public struct StoredResponseInfo: Sendable {
    /// The final status code of the stored response.
    public var status: Int
    /// The stored response header fields.
    public var headers: HTTPFields
    /// When the request that produced it was sent (epoch seconds; RFC 9111 §4.2.3 request_time).
    public var requestTime: Int64
    /// When the response was received (epoch seconds; RFC 9111 §4.2.3 response_time).
    public var responseTime: Int64

    /// Creates the record of a stored response.
    public init(status: Int, headers: HTTPFields, requestTime: Int64, responseTime: Int64) {
        self.status = status
        self.headers = headers
        self.requestTime = requestTime
        self.responseTime = responseTime
    }
}

/// What the policy needs of a stored response, parsed once: its response directives, freshness lifetime
/// (§4.2.1) and the corrected initial age (§4.2.3), so the age at any later time is plain arithmetic.
public struct StoredFacts: Sendable {
    /// The response's Cache-Control directives.
    public let control: CacheControl
    /// The freshness lifetime in seconds.
    public let lifetime: Int64
    /// The age the response had when it was received (`corrected_initial_age`).
    public let initialAge: Int64
    /// When it was received (epoch seconds).
    public let responseTime: Int64

    /// Parses a stored response once.
    public init(_ stored: StoredResponseInfo) {
        control = CacheControl.response(stored.headers)
        lifetime = CachePolicy.freshnessLifetime(stored: stored)
        initialAge = CachePolicy.currentAge(stored: stored, now: stored.responseTime)
        responseTime = stored.responseTime
    }

    /// The current age at `now` (RFC 9111 §4.2.3: initial age plus resident time).
    public func currentAge(now: Int64) -> Int64 {
        HeaderFields.add(initialAge, max(0, HeaderFields.sub(now, responseTime)))
    }
}

/// How a shared cache may answer a request from a stored response (RFC 9111 §4).
public enum CacheDecision: Sendable, Equatable {
    /// The stored response is fresh: serve it with this current age.
    case fresh(age: Int64)
    /// It is stale but the request's `max-stale` accepts it: serve it (with a stale warning if desired).
    case staleAllowed(age: Int64)
    /// It must be validated with the origin (conditional request) before use.
    case revalidate
    /// Inside the `stale-while-revalidate` window: serve it and refresh in the background.
    case staleWhileRevalidate(age: Int64)
    /// The request said `only-if-cached` and nothing usable is stored: answer 504 (§5.2.1.7).
    case onlyIfCachedMiss
}

/// The pure RFC 9111 policy of a shared cache; times are epoch seconds passed in by the caller.
public enum CachePolicy {
    /// Status codes heuristically cacheable by default (RFC 9110 §15.1), minus 206 (no range support yet).
    public static let heuristicallyCacheable: Set<Int> = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]

    /// Final status codes this cache understands (RFC 9111 §3), which `must-understand` requires; 206 and 304 excluded.
    public static let understoodStatuses: Set<Int> = [
        200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 307, 308,
        400, 401, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417,
        421, 422, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 511,
    ]

    /// Whether a shared cache may store this response (RFC 9111 §3).
    ///
    /// Only GET is storable: a HEAD response has no content and can only refresh a stored GET
    /// response's header fields (§4.3.5), which the caller does with `updatedHeaders`.
    /// 206 is not stored (no range support yet). `Vary: *` is not stored, since it could never
    /// match (§4.1). A qualified `private="…"` is treated as unqualified (not stored).
    public static func isStorable(
        method: String, requestHeaders: HTTPFields, status: Int, responseHeaders: HTTPFields
    ) -> Bool {
        guard method == "GET", (200...599).contains(status), status != 206, status != 304 else { return false }
        let req = CacheControl.request(requestHeaders)
        let res = CacheControl.response(responseHeaders)
        // §3 and §5.2.2.3: with must-understand, only a status this cache understands is stored (and then
        // must-understand overrides no-store); without it, any final status with explicit freshness may be.
        if res.mustUnderstand && !understoodStatuses.contains(status) { return false }
        if res.noStore && !res.mustUnderstand { return false }
        if req.noStore { return false }
        if res.isPrivate { return false }
        if HeaderFields.contains("authorization", in: requestHeaders),
           !(res.isPublic || res.sMaxAge != nil || res.mustRevalidate) {
            return false
        }
        if varyIsStar(responseHeaders) { return false }
        return res.isPublic || res.maxAge != nil || res.sMaxAge != nil
            || HeaderFields.contains("expires", in: responseHeaders)
            || heuristicallyCacheable.contains(status)
    }

    /// Whether the response's `Vary` lists `*`.
    static func varyIsStar(_ headers: HTTPFields) -> Bool {
        HeaderFields.values("vary", in: headers).contains { line in
            HeaderFields.splitList(line).contains("*")
        }
    }

    /// The freshness lifetime in seconds of a response for a shared cache (RFC 9111 §4.2.1, §4.2.2).
    ///
    /// `s-maxage`, then `max-age`, then `Expires − Date` (an invalid `Expires` means already
    /// expired; a missing `Date` is taken as `responseTime`). Without explicit freshness, and only
    /// for a heuristically cacheable status or `public`, 10 % of `Date − Last-Modified`, at most one day.
    public static func freshnessLifetime(status: Int, responseHeaders: HTTPFields, responseTime: Int64) -> Int64 {
        let cc = CacheControl.response(responseHeaders)
        if let s = cc.sMaxAge { return s }
        if let m = cc.maxAge { return m }
        let date = dateValue(responseHeaders, responseTime: responseTime)
        if let expiresRaw = HeaderFields.first("expires", in: responseHeaders) {
            guard let expires = HTTPDate.parse(expiresRaw) else { return 0 }
            return max(0, HeaderFields.sub(expires, date))
        }
        guard heuristicallyCacheable.contains(status) || cc.isPublic,
              let lmRaw = HeaderFields.first("last-modified", in: responseHeaders),
              let lastModified = HTTPDate.parse(lmRaw)
        else { return 0 }
        let interval = max(0, HeaderFields.sub(date, lastModified))
        return min(interval / 10, 86_400)
    }

    /// The `Date` of a response, or the time it was received when absent or invalid.
    static func dateValue(_ headers: HTTPFields, responseTime: Int64) -> Int64 {
        HeaderFields.first("date", in: headers).flatMap { HTTPDate.parse($0) } ?? responseTime
    }

    /// The current age in seconds of a stored response (RFC 9111 §4.2.3).
    ///
    /// An absent or invalid `Age` counts as 0; negative intervals (clock skew) are clamped to 0
    /// and all arithmetic saturates instead of overflowing.
    public static func currentAge(
        responseHeaders: HTTPFields, requestTime: Int64, responseTime: Int64, now: Int64
    ) -> Int64 {
        let dateValue = dateValue(responseHeaders, responseTime: responseTime)
        // A list in one Age line ("7200, 0", sent by broken intermediaries) counts by its first member.
        let ageValue = HeaderFields.first("age", in: responseHeaders)
            .flatMap { HeaderFields.splitList($0).first }.flatMap(HeaderFields.deltaSeconds) ?? 0
        let apparentAge = max(0, HeaderFields.sub(responseTime, dateValue))
        let responseDelay = max(0, HeaderFields.sub(responseTime, requestTime))
        let correctedAgeValue = HeaderFields.add(ageValue, responseDelay)
        let correctedInitialAge = max(apparentAge, correctedAgeValue)
        let residentTime = max(0, HeaderFields.sub(now, responseTime))
        return HeaderFields.add(correctedInitialAge, residentTime)
    }

    /// The current age of a stored response at `now`.
    public static func currentAge(stored: StoredResponseInfo, now: Int64) -> Int64 {
        currentAge(
            responseHeaders: stored.headers, requestTime: stored.requestTime,
            responseTime: stored.responseTime, now: now)
    }

    /// The freshness lifetime of a stored response.
    public static func freshnessLifetime(stored: StoredResponseInfo) -> Int64 {
        freshnessLifetime(status: stored.status, responseHeaders: stored.headers, responseTime: stored.responseTime)
    }

    /// Whether a stale response must not be served without validation (§4.2.4: `must-revalidate`,
    /// `proxy-revalidate`, `s-maxage` for a shared cache, or `no-cache`).
    static func forbidsStale(_ res: CacheControl) -> Bool {
        res.mustRevalidate || res.proxyRevalidate || res.sMaxAge != nil || res.noCache
    }

    /// Decides how a request may be answered from a stored response (RFC 9111 §4, §4.2.4, §5.2; RFC 5861 §3).
    ///
    /// A qualified `no-cache="…"` is treated as unqualified. When stale, `stale-while-revalidate`
    /// is preferred over the request's `max-stale` (both serve; the former also refreshes).
    public static func decide(requestHeaders: HTTPFields, stored: StoredResponseInfo, now: Int64) -> CacheDecision {
        decide(requestHeaders: requestHeaders, facts: StoredFacts(stored), now: now)
    }

    /// `decide` over facts parsed once at store time (the hit path parses no response header).
    public static func decide(requestHeaders: HTTPFields, facts: StoredFacts, now: Int64) -> CacheDecision {
        let req = CacheControl.request(requestHeaders)
        let res = facts.control
        let age = facts.currentAge(now: now)
        let lifetime = facts.lifetime
        let mustValidate: CacheDecision = req.onlyIfCached ? .onlyIfCachedMiss : .revalidate

        if res.noCache || req.noCache { return mustValidate }
        if let maxAge = req.maxAge, age > maxAge { return mustValidate }
        if let minFresh = req.minFresh, HeaderFields.sub(lifetime, age) < minFresh { return mustValidate }
        if lifetime > age { return .fresh(age: age) }

        if forbidsStale(res) { return mustValidate }
        let staleness = HeaderFields.sub(age, lifetime)
        if let swr = res.staleWhileRevalidate, staleness <= swr { return .staleWhileRevalidate(age: age) }
        switch req.maxStale {
        case .any: return .staleAllowed(age: age)
        case .seconds(let n) where staleness <= n: return .staleAllowed(age: age)
        default: return mustValidate
        }
    }

    /// Whether a stored response may be served after an error reaching the origin (RFC 5861 §4).
    ///
    /// True while fresh, or while stale by no more than the response's (or the request's)
    /// `stale-if-error`, unless a directive forbids serving stale (RFC 9111 §4.2.4).
    /// `graceSeconds` is the operator's own window (a route's "serve stale while origins are down"), used when
    /// longer than the directives'; it never overrides `must-revalidate`, `proxy-revalidate`, `s-maxage` or `no-cache`.
    public static func canServeStaleOnError(stored: StoredResponseInfo, now: Int64, requestHeaders: HTTPFields = [],
                                            graceSeconds: Int64 = 0) -> Bool {
        let res = CacheControl.response(stored.headers)
        let req = CacheControl.request(requestHeaders)
        let age = currentAge(stored: stored, now: now)
        let lifetime = freshnessLifetime(stored: stored)
        if lifetime > age && !res.noCache { return true }
        if forbidsStale(res) { return false }
        let directive = req.staleIfError ?? res.staleIfError
        let window = max(directive ?? -1, graceSeconds > 0 ? graceSeconds : -1)
        guard window >= 0 else { return false }
        return HeaderFields.sub(age, lifetime) <= window
    }

    /// The validator fields of a conditional request revalidating `stored` (RFC 9111 §4.3.1).
    ///
    /// `If-None-Match` with the stored ETag (strong or weak), and also `If-Modified-Since` with
    /// `Last-Modified` when present (RFC 9110 §8.8.1 SHOULD send both). With neither validator,
    /// `If-Modified-Since` carries the stored `Date`. Empty when there is nothing to validate with.
    public static func conditionalHeaders(stored: StoredResponseInfo) -> [(String, String)] {
        var out: [(String, String)] = []
        if let etag = HeaderFields.first("etag", in: stored.headers), EntityTag.parseList(etag).count == 1 {
            out.append(("If-None-Match", etag))
        }
        if let lm = HeaderFields.first("last-modified", in: stored.headers), HTTPDate.parse(lm) != nil {
            out.append(("If-Modified-Since", lm))
        } else if out.isEmpty, let date = HeaderFields.first("date", in: stored.headers), HTTPDate.parse(date) != nil {
            out.append(("If-Modified-Since", date))
        }
        return out
    }

    /// Whether the client's own conditional request is satisfied by `stored`, so a 304 can be sent (§4.3.2).
    ///
    /// `If-None-Match` (weak comparison, `*` matches any stored response) takes precedence;
    /// otherwise `If-Modified-Since` is compared with `Last-Modified`, else `Date`, else the
    /// time the response was received. Invalid dates never match.
    public static func clientConditionMatches(requestHeaders: HTTPFields, stored: StoredResponseInfo) -> Bool {
        if let inm = HeaderFields.combined("if-none-match", in: requestHeaders) {
            if HeaderFields.splitList(inm) == ["*"] { return true }
            guard let storedRaw = HeaderFields.first("etag", in: stored.headers),
                  let storedTag = EntityTag.parseList(storedRaw).first
            else { return false }
            return EntityTag.parseList(inm).contains { $0.weaklyMatches(storedTag) }
        }
        guard let imsRaw = HeaderFields.first("if-modified-since", in: requestHeaders),
              let ims = HTTPDate.parse(imsRaw)
        else { return false }
        let modified = HeaderFields.first("last-modified", in: stored.headers).flatMap { HTTPDate.parse($0) }
            ?? dateValue(stored.headers, responseTime: stored.responseTime)
        return modified <= ims
    }

    /// Field names never copied from a 304 into a stored response: framing and hop-by-hop (§3.1, §3.2).
    public static let nonUpdatableFields: Set<String> = [
        "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
        "trailer", "upgrade", "proxy-authenticate", "proxy-authentication-info", "proxy-authorization",
    ]

    /// The stored header fields updated with those of a 304 (or HEAD) response (RFC 9111 §3.2, §4.3.4).
    ///
    /// Every field in `notModified` replaces all stored fields of that name, except framing and
    /// hop-by-hop fields (and any named by the 304's `Connection`). Stored fields keep their order;
    /// replacements are appended.
    public static func updatedHeaders(stored: StoredResponseInfo, notModified: HTTPFields) -> [(String, String)] {
        var excluded = nonUpdatableFields
        for line in HeaderFields.values("connection", in: notModified) {
            for name in HeaderFields.splitList(line) { excluded.insert(HeaderFields.asciiLowercased(name)) }
        }
        let updates = notModified.filter { !excluded.contains(HeaderFields.asciiLowercased($0.name)) }
        let replaced = Set(updates.map { HeaderFields.asciiLowercased($0.name) })
        var out: [(String, String)] = stored.headers
            .filter { !replaced.contains(HeaderFields.asciiLowercased($0.name)) }
            .map { ($0.name, $0.value) }
        out.append(contentsOf: updates.map { ($0.name, $0.value) })
        return out
    }
}

extension CachePolicy {
    /// The response header fields to store (RFC 9111 §3.1): hop-by-hop fields, fields named by
    /// `Connection`, and `Proxy-Authenticate`/`-Authentication-Info`/`-Authorization` are dropped.
    /// (Fields named by a qualified `no-cache`/`private` need not be stripped: such responses are
    /// always revalidated or not stored.)
    public static func headersToStore(responseHeaders: HTTPFields) -> [(String, String)] {
        var excluded = nonUpdatableFields
        excluded.remove("content-length")
        for line in HeaderFields.values("connection", in: responseHeaders) {
            for name in HeaderFields.splitList(line) { excluded.insert(HeaderFields.asciiLowercased(name)) }
        }
        return responseHeaders
            .filter { !excluded.contains(HeaderFields.asciiLowercased($0.name)) }
            .map { ($0.name, $0.value) }
    }

    /// Whether a 304 (or HEAD) response applies to this stored response (RFC 9111 §4.3.4, §4.3.5).
    ///
    /// A strong ETag in the 304 must strongly equal the stored one; a weak ETag must weakly
    /// match; otherwise a `Last-Modified` in the 304 must equal the stored one; with no
    /// validator at all the single stored response is selected.
    public static func notModifiedSelects(stored: StoredResponseInfo, notModified: HTTPFields) -> Bool {
        let storedTag = HeaderFields.first("etag", in: stored.headers).flatMap { EntityTag.parseList($0).first }
        if let raw = HeaderFields.first("etag", in: notModified) {
            guard let newTag = EntityTag.parseList(raw).first, let storedTag else { return false }
            if newTag.weak { return newTag.weaklyMatches(storedTag) }
            return !storedTag.weak && newTag.opaque == storedTag.opaque
        }
        if let raw = HeaderFields.first("last-modified", in: notModified) {
            guard let new = HTTPDate.parse(raw),
                  let old = HeaderFields.first("last-modified", in: stored.headers).flatMap({ HTTPDate.parse($0) })
            else { return false }
            return new == old
        }
        return true
    }
}

/// An entity-tag (RFC 9110 §8.8.3): an opaque quoted string, possibly weak.
struct EntityTag: Equatable {
    /// Whether it had the `W/` prefix.
    var weak: Bool
    /// The opaque-tag without quotes.
    var opaque: String

    /// Weak comparison (RFC 9110 §8.8.3.2): the opaque tags are equal, weakness ignored.
    func weaklyMatches(_ other: EntityTag) -> Bool { opaque == other.opaque }

    /// Parses a comma list of entity-tags; stops at the first malformed member (commas inside quotes are allowed).
    static func parseList(_ s: String) -> [EntityTag] {
        let b = Array(s.utf8)
        var i = 0
        var out: [EntityTag] = []
        while i < b.count {
            while i < b.count, HeaderFields.isOWS(b[i]) || b[i] == 0x2C { i += 1 }
            if i >= b.count { break }
            var weak = false
            if b[i] == 0x57, i + 1 < b.count, b[i + 1] == 0x2F {
                weak = true
                i += 2
            }
            guard i < b.count, b[i] == 0x22 else { return out }
            i += 1
            let start = i
            while i < b.count, b[i] != 0x22 { i += 1 }
            guard i < b.count else { return out }
            out.append(EntityTag(weak: weak, opaque: String(decoding: b[start..<i], as: UTF8.self)))
            i += 1
        }
        return out
    }
}
