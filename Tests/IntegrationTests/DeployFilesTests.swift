import Foundation
import XCTest

/// The deployment files under deploy/ (Docker Compose, Kubernetes, systemd) and their topologies agree with each
/// other and with the README: `deploy_check.py` checks the fields and runs `lodestar check` on both deployment
/// topologies; the compose file is also parsed by `docker-compose config` / `docker compose config` when available.
final class DeployFilesTests: XCTestCase {
    private var root: URL { IntegrationEnvironment.packageRoot }

    func testDeploymentFilesAreConsistent() throws {
        guard let python = IntegrationEnvironment.which("python3") else {
            throw XCTSkip("python3 not found on PATH (apt-get install python3 python3-yaml)")
        }
        let probe = try runCommand(python, ["-c", "import yaml"], timeout: 30)
        if probe.status != 0 {
            print("skipping deploy file checks: PyYAML is not installed for \(python) (apt-get install python3-yaml)")
            throw XCTSkip("PyYAML is not installed for \(python) (Debian package python3-yaml)")
        }
        let binary = try IntegrationEnvironment.lodestarBinary()
        let script = IntegrationEnvironment.testsFolder.appendingPathComponent("deploy_check.py").path
        let r = try runCommand(python, [script, binary.path, root.path], timeout: 120, currentDirectory: root)
        print(r.stdout, r.stderr)
        if r.status == 77 { throw XCTSkip("deploy_check.py: \(r.stdout)") }
        XCTAssertFalse(r.timedOut, "deploy_check.py timed out")
        XCTAssertEqual(r.status, 0, "deploy_check.py failed:\n\(r.stdout)\(r.stderr)")
    }

    func testComposeFileParses() throws {
        let compose = root.appendingPathComponent("deploy/compose.yaml").path
        var tool: (String, [String])?
        if let v1 = IntegrationEnvironment.which("docker-compose") {
            tool = (v1, ["-f", compose, "config", "-q"])
        } else if let docker = IntegrationEnvironment.which("docker"),
                  let v = try? runCommand(docker, ["compose", "version"], timeout: 30), v.status == 0 {
            tool = (docker, ["compose", "-f", compose, "config", "-q"])
        }
        guard let (executable, arguments) = tool else {
            print("skipping the compose parse: neither docker-compose nor `docker compose` is available "
                  + "(apt-get install docker-compose)")
            throw XCTSkip("neither docker-compose nor the docker compose plugin is available")
        }
        let r = try runCommand(executable, arguments, timeout: 120, currentDirectory: root)
        print("\(executable) \(arguments.joined(separator: " ")): exit \(r.status) \(r.stdout)\(r.stderr)")
        XCTAssertFalse(r.timedOut, "compose config timed out")
        XCTAssertEqual(r.status, 0, "compose config rejected deploy/compose.yaml:\n\(r.stdout)\(r.stderr)")
    }
}
