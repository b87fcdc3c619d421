/// The upstream phase of one request as a state machine that knows no channel: events in (a server picked, connected,
/// connect failed, closed before the answer, the answer's head, its end, a timeout), actions out (connect to server
/// X, send the request, relay, fail with a status, retry elsewhere). The NIO adapter carries the actions out and
/// reports the health outcomes it is given (`Step.health`).
///
/// Retry rules (nginx's `proxy_next_upstream error timeout`, Envoy's `connect-failure,reset`): a request is sent
/// again only while nothing of it can have been acted on — a connect failure, or a connection closed before any
/// answer for an idempotent request whose body (if any) the adapter still holds whole — up to `retries` more times,
/// on another server when there is one. A reused keep-alive connection that the origin had already closed (its idle
/// timeout and the request crossed) is nobody's fault: one extra try, and the server may be chosen again.
public struct UpstreamExchange: Sendable {
    /// What the adapter does next.
    public enum Action: Equatable, Sendable {
        /// Open (or reuse) a connection to this server.
        case connect(server: Int)
        /// The connection is there: send the request head and the body read so far.
        case sendRequest
        /// Relay the origin's response head (and then its body) to the client.
        case relay
        /// The origin switched protocols (101) on an upgrade request: become a tunnel.
        case tunnel
        /// Answer the client with an edge-made error (it may be served from a stale cache entry instead).
        case fail(status: Int, reason: String, retryAfter: Int?)
        /// The response has started: the only thing left to tell the client is a closed connection.
        case abortClient(reason: String)
        /// The exchange ended; the upstream connection may go back to its pool.
        case complete(reuseConnection: Bool)
        /// Nothing to do (a late event).
        case none
    }

    /// An action and, when the event says something about a server, the outcome for its health.
    public struct Step: Equatable, Sendable {
        public var action: Action
        public var health: (server: Int, success: Bool)?
        public init(action: Action, health: (server: Int, success: Bool)? = nil) {
            self.action = action
            self.health = health
        }
        public static func == (a: Step, b: Step) -> Bool {
            a.action == b.action && a.health?.server == b.health?.server && a.health?.success == b.health?.success
        }
    }

    public enum State: Equatable, Sendable {
        case idle, connecting(Int), sent(Int), receiving(Int), tunnel, done
    }

    public private(set) var state: State = .idle
    /// Servers tried so far (the balancer skips them).
    public private(set) var tried = ServerSet()
    public private(set) var attempts = 0
    /// The server of the latest attempt (kept after the exchange ends, for the log).
    public private(set) var lastServer: Int?
    let idempotent: Bool
    let hasBody: Bool
    let retries: Int
    let upgrade: Bool

    /// `idempotent`: RFC 9110 §9.2.2 methods; `hasBody`: the request has a body (replayed only while the adapter
    /// still holds all of it, see `closedBeforeResponse`).
    public init(idempotent: Bool, hasBody: Bool, retries: Int, upgrade: Bool = false) {
        self.idempotent = idempotent
        self.hasBody = hasBody
        self.retries = retries
        self.upgrade = upgrade
    }

    /// RFC 9110 §9.2.2.
    public static func isIdempotent(method: String) -> Bool {
        switch method {
        case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE": return true
        default: return false
        }
    }

    /// The current server, if any.
    public var server: Int? {
        switch state {
        case .connecting(let s), .sent(let s), .receiving(let s): return s
        default: return nil
        }
    }

    /// First event: `pick` chooses among available servers not in its argument (nil: none left).
    public mutating func start(pick: (ServerSet) -> Int?) -> Step {
        guard case .idle = state else { return Step(action: .none) }
        return next(pick: pick, nothingPicked: { $0 == 0 ? .fail(status: 503, reason: "no healthy origin server", retryAfter: 5)
                                                      : .fail(status: 502, reason: "origin unreachable", retryAfter: nil) })
    }

    /// The connection is open (or an idle one was taken).
    public mutating func connected() -> Step {
        guard case .connecting(let s) = state else { return Step(action: .none) }
        state = .sent(s)
        return Step(action: .sendRequest)
    }

    /// Connecting failed: counts against the server; tried again elsewhere when nothing was sent.
    public mutating func connectFailed(timedOut: Bool, pick: (ServerSet) -> Int?) -> Step {
        guard case .connecting(let s) = state else { return Step(action: .none) }
        var step: Step
        if idempotent && attempts <= retries {
            step = next(pick: pick) { _ in .fail(status: 502, reason: "origin unreachable", retryAfter: nil) }
        } else {
            state = .done
            step = Step(action: .fail(status: timedOut ? 504 : 502,
                                      reason: timedOut ? "origin connect timed out" : "origin unreachable", retryAfter: nil))
        }
        step.health = (s, false)
        return step
    }

    /// The connection closed before any response head. `bodyReplayable`: every body byte sent so far is still held
    /// by the adapter (a small body), so the request can be sent again whole.
    public mutating func closedBeforeResponse(reusedConnection: Bool, bodyReplayable: Bool = false,
                                              pick: (ServerSet) -> Int?) -> Step {
        guard case .sent(let s) = state else { return Step(action: .none) }
        let health: (Int, Bool)? = reusedConnection ? nil : (s, false)
        if idempotent && (!hasBody || bodyReplayable) && attempts <= retries + (reusedConnection ? 1 : 0) {
            if reusedConnection { tried.remove(s) }
            var step = next(pick: pick) { _ in .fail(status: 502, reason: "origin closed the connection", retryAfter: nil) }
            step.health = health
            return step
        }
        state = .done
        return Step(action: .fail(status: 502, reason: "origin closed the connection", retryAfter: nil), health: health)
    }

    /// A final response head (interim 1xx are the adapter's to relay). 5xx counts against the server; a status outside
    /// 200–599 (or a 101 nobody asked for) is the origin's fault: 502.
    public mutating func responseHead(status: Int) -> Step {
        guard case .sent(let s) = state else { return Step(action: .none) }
        if status == 101 && upgrade {
            state = .tunnel
            return Step(action: .tunnel, health: (s, true))
        }
        guard (200...599).contains(status) else {
            state = .done
            return Step(action: .fail(status: 502, reason: "invalid response from the origin", retryAfter: nil), health: (s, false))
        }
        state = .receiving(s)
        return Step(action: .relay, health: (s, status < 500))
    }

    /// The response ended; the connection is reusable when the request was sent whole and the origin keeps it open.
    public mutating func responseEnded(requestEnded: Bool, originKeepsAlive: Bool) -> Step {
        guard case .receiving = state else { return Step(action: .none) }
        state = .done
        return Step(action: .complete(reuseConnection: requestEnded && originKeepsAlive))
    }

    /// The connection closed (or failed) while the response was being relayed.
    public mutating func closedMidResponse() -> Step {
        guard case .receiving = state else { return Step(action: .none) }
        state = .done
        return Step(action: .abortClient(reason: "origin closed mid-response"))
    }

    /// The origin stopped answering (response timeout): 504 before the head, a cut connection after it.
    public mutating func timedOut() -> Step {
        switch state {
        case .sent(let s):
            state = .done
            return Step(action: .fail(status: 504, reason: "origin timed out", retryAfter: nil), health: (s, false))
        case .receiving(let s):
            state = .done
            return Step(action: .abortClient(reason: "origin timed out mid-response"), health: (s, false))
        default:
            return Step(action: .none)
        }
    }

    /// The client went away or the edge gave up: nothing more happens.
    public mutating func cancel() { state = .done }

    private mutating func next(pick: (ServerSet) -> Int?, nothingPicked: (Int) -> Action) -> Step {
        guard let s = pick(tried) else {
            let action = nothingPicked(attempts)
            state = .done
            return Step(action: action)
        }
        attempts += 1
        tried.append(s)
        lastServer = s
        state = .connecting(s)
        return Step(action: .connect(server: s))
    }
}

/// The servers an exchange has tried: the first one held inline, any more (retries) in a list. Nearly every exchange
/// tries one server, and an array allocated its storage for that one on every request.
public struct ServerSet: Equatable, ExpressibleByArrayLiteral, Sendable {
    private var first: Int?
    private var more: [Int] = []

    public init() {}

    public init(arrayLiteral elements: Int...) {
        for e in elements { append(e) }
    }

    public var isEmpty: Bool { first == nil }

    public func contains(_ server: Int) -> Bool { first == server || (!more.isEmpty && more.contains(server)) }

    public mutating func append(_ server: Int) {
        if first == nil { first = server } else { more.append(server) }
    }

    /// Forgets `server` (every entry of it).
    public mutating func remove(_ server: Int) {
        more.removeAll { $0 == server }
        if first == server { first = more.isEmpty ? nil : more.removeFirst() }
    }
}
