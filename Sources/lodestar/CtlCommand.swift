import ArgumentParser
import AsyncHTTPClient
import Foundation
import LodestarTopology
import NIOCore
import NIOHTTP1

/// `lodestar ctl`: calls a running node's admin API (the DNS node's by default, or an edge's with `--edge`).
struct CtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Call a running node's admin API: status, metrics, health, reload, drain, undrain, purge.",
        discussion: """
        The address comes from the topology (dns.admin, or edges[].admin with --edge) unless --admin names one; the \
        bearer token from the topology's admin section (tokenFile or tokenEnvironment) unless --token-file names one.
        Examples:
          lodestar ctl status
          lodestar ctl reload
          lodestar ctl drain --target-edge edge-eu-central --reason "kernel upgrade"
          lodestar ctl drain --region eu-central
          lodestar ctl --edge edge-eu-central drain        (the edge drains itself and tells every DNS node by gossip)
          lodestar ctl --edge edge-eu-central purge --url http://www.example.test/static/app.css
        """)

    /// What to do.
    enum Action: String, ExpressibleByArgument, CaseIterable {
        case status, metrics, healthz, readyz, reload, drain, undrain, purge
    }

    @Argument(help: "One of: \(Action.allCases.map(\.rawValue).joined(separator: ", ")).")
    var action: Action

    @Option(name: .long, help: "Topology file (for the admin address and token).")
    var topology: String = "topology.json"

    @Option(name: .long, help: "Talk to this edge's admin listener instead of the DNS node's.")
    var edge: String?

    @Option(name: .long, help: "Admin address ADDR:PORT (replaces the topology's).")
    var admin: String?

    @Option(name: .long, help: "File with the bearer token (replaces the topology's admin section).")
    var tokenFile: String?

    @Option(name: .long, help: "drain/undrain on the DNS node: the edge to drain.")
    var targetEdge: String?

    @Option(name: .long, help: "drain/undrain on the DNS node: the region to drain (all its edges).")
    var region: String?

    @Option(name: .long, help: "drain: why (shown in /status).")
    var reason: String?

    @Option(name: .long, help: "purge: one URL (all its variants).")
    var url: String?

    @Option(name: .long, help: "purge: every URL under this prefix.")
    var prefix: String?

    @Option(name: .long, help: "Seconds to wait for the answer.")
    var timeout: Double = 10

    func run() async throws {
        let (address, token) = try target()
        var query = [(String, String)]()
        let (method, path): (String, String)
        switch action {
        case .status: (method, path) = ("GET", "/status")
        case .metrics: (method, path) = ("GET", "/metrics")
        case .healthz: (method, path) = ("GET", "/healthz")
        case .readyz: (method, path) = ("GET", "/readyz")
        case .reload: (method, path) = ("POST", "/reload")
        case .drain, .undrain:
            (method, path) = ("POST", "/" + action.rawValue)
            if edge == nil {
                guard (targetEdge == nil) != (region == nil) else {
                    throw ValidationError("\(action.rawValue) on the DNS node needs --target-edge ID or --region ID")
                }
                if let targetEdge { query.append(("edge", targetEdge)) }
                if let region { query.append(("region", region)) }
            }
            if let reason { query.append(("reason", reason)) }
        case .purge:
            guard edge != nil || admin != nil else { throw ValidationError("purge goes to an edge: give --edge ID") }
            guard (url == nil) != (prefix == nil) else { throw ValidationError("purge needs --url URL or --prefix URL") }
            (method, path) = ("POST", "/cache/purge")
            if let url { query.append(("url", url)) }
            if let prefix { query.append(("prefix", prefix)) }
        }
        let target = path + (query.isEmpty ? "" : "?" + query.map { "\($0.0)=\(Self.percentEncode($0.1))" }.joined(separator: "&"))
        let response = try await AdminClient.request(method: method, address: address, target: target, token: token,
                                                     timeout: timeout)
        FileHandle.standardOutput.write(Data(response.body))
        if response.status >= 400 {
            printError("\(method) \(path): HTTP \(response.status)")
            throw ExitCode(response.status == 401 ? 3 : 1)
        }
    }

    /// The admin address and token to use.
    func target() throws -> (ListenAddress, String?) {
        var token: String?
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw ValidationError("--token-file \(tokenFile): cannot read it")
            }
            token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        if let admin {
            guard let a = ListenAddress(admin) else { throw ValidationError("--admin \(admin): not ADDR:PORT or [ADDR]:PORT") }
            if token == nil, let t = try? Topology.load(path: topology) { token = try? t.admin?.token() }
            return (a, token)
        }
        let t: Topology
        do {
            t = try Topology.load(path: topology)
        } catch let errors as TopologyErrors {
            for issue in errors.issues { printError(issue.description) }
            printError("the admin address comes from this file, which does not load (a reload of it would be refused too); "
                       + "give --admin ADDR:PORT to reach the node anyway")
            throw ExitCode(1)
        }
        if token == nil, let settings = t.admin { token = try settings.token() }
        if let edge {
            guard let e = t.edge(edge) else { throw ValidationError("--edge \(edge): no such edge in \(topology)") }
            guard let a = e.admin else { throw ValidationError("--edge \(edge): the edge has no admin listener (edges[].admin)") }
            return (a, token)
        }
        guard let a = t.dns.admin else { throw ValidationError("\(topology): dns.admin is not set; give --admin ADDR:PORT") }
        return (a, token)
    }

    /// Percent-encodes a query value.
    static func percentEncode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~:/")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}

/// The admin API over AsyncHTTPClient: one request, its status and whole body.
enum AdminClient {
    /// Bodies larger than this are refused (a `/metrics` page is well under it).
    static let maxBody = 64 << 20

    static func request(method: String, address: ListenAddress, target: String, token: String?,
                        timeout: Double) async throws -> (status: Int, body: [UInt8]) {
        let host = address.host.isIPv4 ? address.host.description : "[\(address.host)]"
        var request = HTTPClientRequest(url: "http://\(host):\(address.port)\(target)")
        request.method = .RAW(value: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let deadline = TimeAmount.milliseconds(Int64(max(0.001, timeout) * 1000))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: deadline)
            let body = try await response.body.collect(upTo: maxBody)
            return (Int(response.status.code), Array(buffer: body))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw ValidationError("no answer from \(address) within \(timeout) s")
        } catch {
            throw ValidationError("cannot reach \(address): \(error)")
        }
    }
}
