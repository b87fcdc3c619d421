#!/usr/bin/env python3
"""HTTP cache conformance runner: the cache-tests cases (cases/*.json) against a proxy.

It starts its own scripted origin on 127.0.0.1:ORIGIN_PORT, sends each case's requests
through the proxy under test (--proxy) and checks what the client received and what the
origin saw, with the semantics of the HTTP WG cache-tests suite (see README.md).

  python3 Tests/Conformance/cache_conformance.py --proxy http://127.0.0.1:18180 \
      --host www.example.test --origin-port 18189 --label nginx --jobs 32 --json out.json

One line per case (PASS|FAIL|SKIP <id> — <reason>), then
`CONFORMANCE <label>: passed P of T (failed F, skipped S)`. Exit status: 0 when the run
completed (failures are results), 1 when an --expect-pass case did not pass, 2 when the
runner itself could not run (bad arguments, origin port taken, proxy not reachable).
Python 3 standard library only.
"""
import argparse
import concurrent.futures
import copy
import email.utils
import http.server
import json
import os
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
import uuid as uuidlib

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CASES = os.path.join(HERE, "cases")

DATE_HEADERS = {"date", "expires", "last-modified", "if-modified-since", "if-unmodified-since"}
LOCATION_HEADERS = {"location", "content-location"}
NO_BODY_STATUS = {204, 304}
SKIP_ECHO_HEADERS = {"date"}  # origin response headers not compared with what the client got
PASS_CLASSES = {"pass", "yes"}
FRAMING_HEADERS = {"content-length", "transfer-encoding", "connection"}
RFC850_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
SKIP_REASONS = {
    "browser_only": "browser_only: needs a browser (private) cache or fetch() cache modes; not applicable to a shared cache",
}


# ----------------------------------------------------------------- helpers ----

def http_date(now_ms, delta_secs, rfc850=False):
    """Format now (ms) + delta (s) as an HTTP date (IMF-fixdate, or RFC 850 when asked)."""
    if now_ms is None:
        return "Invalid Date"
    secs = (now_ms + delta_secs * 1000) // 1000
    if not rfc850:
        return email.utils.formatdate(secs, usegmt=True)
    tm = time.gmtime(secs)
    return "%s, %02d-%s-%02d %02d:%02d:%02d GMT" % (
        RFC850_DAYS[tm.tm_wday], tm.tm_mday, MONTHS[tm.tm_mon - 1], tm.tm_year % 100, tm.tm_hour, tm.tm_min, tm.tm_sec)


def parse_int(value):
    """Parse a leading decimal integer like JavaScript's parseInt; None when there is none."""
    if value is None:
        return None
    text = value.strip()
    digits = ""
    for i, ch in enumerate(text):
        if ch.isdigit() or (i == 0 and ch in "+-"):
            digits += ch
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return None


def fixup_header(header, resp_headers, req_config):
    """Resolve a header's magic value (date offsets, magic locations) against a response's headers."""
    name, value = header[0], header[1]
    lname = name.lower()
    if lname in DATE_HEADERS and isinstance(value, int) and not isinstance(value, bool):
        now = parse_int(resp_headers.get("server-now"))
        value = http_date(now, value, lname in req_config.get("rfc850date", []))
    if lname in LOCATION_HEADERS and req_config.get("magic_locations"):
        base = resp_headers.get("server-base-url") or ""
        value = f"{base}/{value}" if value else base
    return [name, value] + list(header[2:])


def setup_check(req_config, member):
    """True when a failed check of this member counts as a setup failure, not an assertion."""
    return req_config.get("setup") is True or member in req_config.get("setup_tests", [])


class CheckFailure(Exception):
    """A failed check; kind is 'Setup' or 'Assertion' like the suite's results."""

    def __init__(self, kind, message):
        """Keep the failure kind and message."""
        super().__init__(message)
        self.kind = kind
        self.message = message


def check(is_setup, condition, message):
    """Raise a setup or assertion failure when the condition does not hold."""
    if not condition:
        raise CheckFailure("Setup" if is_setup else "Assertion", message)


# ------------------------------------------------------------------ origin ----

class OriginState:
    """Per-test configurations and the requests the origin saw, keyed by test uuid."""

    def __init__(self):
        """Start with no tests."""
        self.lock = threading.Lock()
        self.configs = {}

    def configure(self, uid, requests):
        """Register a test's request configurations before its first request."""
        with self.lock:
            self.configs[uid] = {"requests": requests, "state": [], "served": {}}

    def state(self, uid):
        """Return a copy of the requests the origin saw for a test."""
        with self.lock:
            entry = self.configs.get(uid)
            return copy.deepcopy(entry["state"]) if entry else []

    def forget(self, uid):
        """Drop a finished test's configuration."""
        with self.lock:
            self.configs.pop(uid, None)


class OriginHandler(http.server.BaseHTTPRequestHandler):
    """Serves the configured response for /test/<uuid>[/file][?query] and records the request."""

    protocol_version = "HTTP/1.1"
    timeout = 60
    origin = None  # OriginState, set by start_origin

    def __getattr__(self, name):
        """Route every method (GET, POST, M-SEARCH, ...) to handle_test."""
        if name.startswith("do_"):
            return self.handle_test
        raise AttributeError(name)

    def log_message(self, fmt, *args):
        """Keep the origin quiet."""

    def read_body(self):
        """Read the request body (Content-Length or chunked) so the connection stays in sync."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = parse_int(self.headers.get("Content-Length")) or 0
        return self.rfile.read(length) if length > 0 else b""

    def send_plain(self, status, text):
        """Send a small text/plain error response."""
        body = (text + "\n").encode()
        self.wfile.write(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
            status, b"Error", len(body), body))

    def handle_test(self):
        """Answer one request of a configured test."""
        self.read_body()
        path = self.path
        if not path.startswith("/test/"):
            self.send_plain(404, f"not a test URL: {path}")
            return
        uid = path[len("/test/"):].split("?")[0].split("/")[0]
        with self.origin.lock:
            entry = self.origin.configs.get(uid)
            if entry is None:
                self.send_plain(409, f"requests not found for {uid}")
                return
            requests = entry["requests"]
            cli_num = parse_int(self.headers.get("Req-Num"))
            req_num = cli_num or (len(entry["state"]) + 1)
            if not 1 <= req_num <= len(requests):
                self.send_plain(409, f"config not found for request {req_num} (anticipating {len(requests)})")
                return
            pause = requests[req_num - 1].get("response_pause")
        if pause:
            time.sleep(pause)
        self.respond(entry, requests, req_num, cli_num)

    def request_headers(self):
        """Return the request headers as {lowercase name: values joined with ', '}."""
        joined = {}
        for name, value in self.headers.items():
            key = name.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        return joined

    def status_for(self, entry, requests, req_num, req_config, req_headers):
        """Pick the status: configured, or 304/999 for requests expected to be conditional."""
        status = tuple(req_config.get("response_status", [200, "OK"]))
        if req_config.get("expected_type", "").endswith("validated"):
            prev = entry["served"].get(req_num - 1) or (requests[req_num - 2].get("response_headers", []) if req_num > 1 else [])
            last_mod = etag = None
            for header in prev:
                if header[0].lower() == "last-modified":
                    last_mod = header[1]
                if header[0].lower() == "etag":
                    etag = header[1]
            matched = (isinstance(last_mod, str) and req_headers.get("if-modified-since") == last_mod) or \
                      (isinstance(etag, str) and req_headers.get("if-none-match") == etag)
            status = (304, "Not Modified") if matched else (999, "304 Not Generated")
        return status

    def respond(self, entry, requests, req_num, cli_num):
        """Build, record and write the response for request number req_num."""
        req_config = requests[req_num - 1]
        req_headers = self.request_headers()
        now_ms = int(time.time() * 1000)
        with self.origin.lock:
            srv_num = len(entry["state"]) + 1
            status = self.status_for(entry, requests, req_num, req_config, req_headers)
            fields = {}  # lowercase name -> [display name, [values]] in first-set order
            magic = {"server-now": str(now_ms), "server-base-url": self.path}
            for name, value in (("Server-Base-Url", self.path), ("Server-Request-Count", str(srv_num)),
                                ("Client-Request-Count", "NaN" if cli_num is None else str(cli_num)), ("Server-Now", str(now_ms))):
                fields[name.lower()] = [name, [value]]
            saved = {}
            served = []
            for header in req_config.get("response_headers", []):
                fixed = fixup_header(header, magic, req_config)
                name, value = fixed[0], str(fixed[1])
                served.append([name, value])
                fields.setdefault(name.lower(), [name, []])[1].append(value)
                if len(header) < 3 or header[2] is True:
                    vals = fields[name.lower()][1]
                    saved[name] = vals[0] if len(vals) == 1 else list(vals)
            entry["served"][req_num] = served
            if "content-type" not in fields:
                fields["content-type"] = ["Content-Type", ["text/plain"]]
            entry["state"].append({"request_num": cli_num, "request_method": self.command, "request_headers": req_headers,
                                   "response_headers": [[k, v] for k, v in saved.items()]})
            numbers = " ".join("NaN" if s["request_num"] is None else str(s["request_num"]) for s in entry["state"])
            fields["request-numbers"] = ["Request-Numbers", [numbers]]
        if "date" not in fields:
            fields["date"] = ["Date", [email.utils.formatdate(now_ms // 1000, usegmt=True)]]
        self.write_interim(req_config)
        if req_config.get("disconnect"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.write_final(status, fields, req_config)

    def write_interim(self, req_config):
        """Write the configured 1xx interim responses."""
        for interim in req_config.get("interim_responses", []):
            code = interim[0]
            phrase = {102: "Processing", 103: "Early Hints"}.get(code, "Interim")
            lines = [f"HTTP/1.1 {code} {phrase}"] + [f"{n}: {v}" for n, v in (interim[1] if len(interim) > 1 else [])]
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
            self.wfile.flush()

    def write_final(self, status, fields, req_config):
        """Write the final response: status line, fields, framing and body."""
        code, phrase = status
        body = b""
        if code not in NO_BODY_STATUS:
            text = req_config.get("response_body") or self.path_uuid()
            body = text.encode("utf-8")
        head_only = self.command == "HEAD"
        own_framing = any(k in fields for k in FRAMING_HEADERS)
        lines = [f"HTTP/1.1 {code} {phrase}"]
        for name, values in fields.values():
            lines.extend(f"{name}: {v}" for v in values)
        if not own_framing:
            if code not in NO_BODY_STATUS:
                lines.append(f"Content-Length: {len(body)}")
            if self.close_connection:
                lines.append("Connection: close")
        else:
            # the case sets framing/connection fields itself: send them as they are, keep the
            # body within a configured Content-Length, and end the connection after it
            self.close_connection = True
            configured = parse_int(fields["content-length"][1][0]) if "content-length" in fields else None
            if configured is not None and configured >= 0:
                body = body[:configured]
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        if not head_only:
            payload += body
        self.wfile.write(payload)
        self.wfile.flush()

    def path_uuid(self):
        """Return the test uuid of the request path (the default response body)."""
        return self.path[len("/test/"):].split("?")[0].split("/")[0]


class OriginServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Threaded origin server with a deep accept queue."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def start_origin(host, port, state):
    """Start the origin in a background thread and return the server."""
    handler = type("BoundOriginHandler", (OriginHandler,), {"origin": state})
    server = OriginServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="origin", daemon=True).start()
    return server


# ------------------------------------------------------------------ client ----

class Response:
    """A response as the client received it."""

    def __init__(self, status, reason, headers, body, interim):
        """Keep the parsed response."""
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in wire order
        self.body = body
        self.interim = interim  # [(status, [(name, value)])]

    def get(self, name):
        """Return all values of a field joined with ', ' (like fetch's Headers.get), or None."""
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ", ".join(values) if values else None

    def has(self, name):
        """True when the field is present."""
        return any(n.lower() == name.lower() for n, _ in self.headers)

    def lower_map(self):
        """Return {lowercase name: joined value}."""
        out = {}
        for n, _ in self.headers:
            out.setdefault(n.lower(), self.get(n))
        return out

    def text(self):
        """Return the body decoded as UTF-8 (replacement on errors)."""
        return self.body.decode("utf-8", "replace")


class ExchangeError(Exception):
    """The proxy did not produce a usable HTTP response."""


def read_head(stream):
    """Read a status line and header block; return (status, reason, headers)."""
    line = stream.readline()
    if not line:
        raise ExchangeError("connection closed without a response")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ExchangeError(f"bad status line {line[:80]!r}")
    headers = []
    while True:
        raw = stream.readline()
        if raw in (b"\r\n", b"\n"):
            break
        if not raw:
            raise ExchangeError("connection closed in the response header")
        text = raw.decode("latin-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + text.strip())
            continue
        name, _, value = text.partition(":")
        headers.append((name.strip(), value.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


def read_body(stream, method, status, headers):
    """Read a response body according to its framing."""
    if method == "HEAD" or status in NO_BODY_STATUS or 100 <= status < 200:
        return b""
    lower = {n.lower(): v for n, v in headers}
    if "chunked" in lower.get("transfer-encoding", "").lower():
        data = b""
        while True:
            size_line = stream.readline()
            if not size_line:
                raise ExchangeError("connection closed in a chunked body")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while stream.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return data
            data += stream.read(size)
            stream.readline()
    if "content-length" in lower:
        length = parse_int(lower["content-length"].split(",")[0]) or 0
        data = stream.read(length)
        if len(data) < length:
            raise ExchangeError(f"body shorter than Content-Length ({len(data)} < {length})")
        return data
    return stream.read()


def exchange(addr, method, target, headers, body, timeout):
    """Send one request over a fresh connection and return the Response (1xx collected)."""
    lines = [f"{method} {target} HTTP/1.1"] + [f"{n}: {v}" for n, v in headers]
    payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body
    with socket.create_connection(addr, timeout=timeout) as sock:
        sock.sendall(payload)
        stream = sock.makefile("rb")
        interim = []
        while True:
            status, reason, resp_headers = read_head(stream)
            if 100 <= status < 200 and status != 101:
                interim.append((status, resp_headers))
                continue
            return Response(status, reason, resp_headers, read_body(stream, method, status, resp_headers), interim)


def combine_headers(pairs):
    """Merge same-name request fields into one line (', '), as fetch() does."""
    order, values = [], {}
    for name, value in pairs:
        key = name.lower()
        if key not in values:
            order.append((key, name))
            values[key] = []
        values[key].append(value)
    return [(name, ", ".join(values[key])) for key, name in order]


# ------------------------------------------------------------------- cases ----

def load_cases(cases_dir):
    """Load the suite files in index order; return [(file stem, suite, [cases])]."""
    with open(os.path.join(cases_dir, "index.json"), encoding="utf-8") as fh:
        index = json.load(fh)
    suites, seen = [], set()
    for item in index["order"]:
        with open(os.path.join(cases_dir, item["file"]), encoding="utf-8") as fh:
            doc = json.load(fh)
        stem = item["file"][:-len(".json")]
        for case in doc["tests"]:
            if case["id"] in seen:
                raise SystemExit(f"duplicate case id {case['id']} in {item['file']}")
            seen.add(case["id"])
            case["_file"] = stem
            case["_suite"] = doc["suite"]["id"]
        suites.append((stem, doc["suite"], doc["tests"]))
    return suites


def select(suites, only):
    """Filter cases by file stem, suite id or case-id prefix (comma-separated tokens)."""
    if not only:
        return [c for _, _, cases in suites for c in cases]
    tokens = [tok.strip().removesuffix(".json").removesuffix(".mjs") for tok in only.split(",") if tok.strip()]
    return [c for stem, suite, cases in suites for c in cases
            if any(tok in (stem, suite["id"]) or c["id"].startswith(tok) for tok in tokens)]


def skip_reason(case):
    """Return why a case does not apply to a shared cache, or None."""
    if case.get("browser_only"):
        return SKIP_REASONS["browser_only"]
    return None


# ----------------------------------------------------------------- running ----

class Context:
    """Run-wide settings shared by the case runners."""

    def __init__(self, args, origin):
        """Derive the proxy address and request settings from the arguments."""
        parsed = urllib.parse.urlsplit(args.proxy)
        self.addr = (parsed.hostname, parsed.port or 80)
        self.prefix = parsed.path.rstrip("/")
        self.host = args.host or parsed.netloc
        self.timeout = args.timeout
        self.pause = args.pause
        self.origin = origin


def request_target(ctx, uid, req_config):
    """Build the request-target for a case request: /test/<uuid>[/filename][?query]."""
    target = f"{ctx.prefix}/test/{uid}"
    if "filename" in req_config:
        target += "/" + req_config["filename"]
    if "query_arg" in req_config:
        target += "?" + req_config["query_arg"]
    return target


def request_headers(ctx, case, idx, req_config, prev):
    """Build the request fields the way the suite's client sends them."""
    pairs = [("Pragma", "foo"), ("Cache-Control", "nothing-to-see-here")]
    for header in req_config.get("request_headers", []):
        name, value = header[0], header[1]
        if req_config.get("magic_ims") and name.lower() == "if-modified-since":
            value = fixup_header(header, prev.lower_map() if prev else {}, req_config)[1]
        pairs.append((name, str(value)))
    pairs += [("Test-Name", case["name"]), ("Test-ID", case["id"]), ("Req-Num", str(idx + 1))]
    body = req_config.get("request_body")
    if body is not None and not any(n.lower() == "content-type" for n, _ in pairs):
        pairs.append(("Content-Type", "text/plain;charset=UTF-8"))
    fields = [("Host", ctx.host), ("User-Agent", "lodestar-cache-conformance/1")] + combine_headers(pairs)
    data = body.encode("utf-8") if body is not None else b""
    if body is not None:
        fields.append(("Content-Length", str(len(data))))
    fields.append(("Connection", "close"))
    return fields, data


def check_response(case, requests, idx, resp, uid):
    """Check one response as the client sees it (type, status, fields, interim, body)."""
    req_num = idx + 1
    cfg = requests[idx]
    res_num = parse_int(resp.get("Server-Request-Count"))
    numbers = resp.get("Request-Numbers")
    if numbers is not None:
        seen = numbers.split(" ")
        check(True, len(seen) == len(set(seen)), "retry")
    if "expected_type" in cfg:
        type_setup = setup_check(cfg, "expected_type")
        if cfg["expected_type"] == "cached" and not (resp.status == 304 and res_num is None):
            check(type_setup, res_num is not None and res_num < req_num, f"Response {req_num} does not come from cache")
        if cfg["expected_type"] == "not_cached":
            check(type_setup, res_num == req_num, f"Response {req_num} comes from cache")
    if "expected_status" in cfg:
        if cfg["expected_status"] is not None:
            check(setup_check(cfg, "expected_status"), resp.status == cfg["expected_status"],
                  f"Response {req_num} status is {resp.status}, not {cfg['expected_status']}")
    elif "response_status" in cfg:
        check(True, resp.status == cfg["response_status"][0], f"Response {req_num} status is {resp.status}, not {cfg['response_status'][0]}")
    elif resp.status == 999:
        check(setup_check(cfg, "expected_type"), False, f"Request {req_num} should have been conditional, but it was not.")
    else:
        check(True, resp.status == 200, f"Response {req_num} status is {resp.status}, not 200")
    check_expected_headers(cfg, resp, req_num)
    check_interim(cfg, resp)
    check_body(cfg, resp, uid)


def check_expected_headers(cfg, resp, req_num):
    """Check expected_response_headers and expected_response_headers_missing."""
    is_setup = setup_check(cfg, "expected_response_headers")
    for header in cfg.get("expected_response_headers", []):
        if isinstance(header, str):
            check(is_setup, resp.has(header), f"Response {req_num} {header} header not present.")
        elif len(header) > 2:
            name, op, operand = header
            check(is_setup, resp.has(name), f"Response {req_num} {name} header not present.")
            value = resp.get(name)
            if op == "=":
                ok, msg = value == resp.get(operand), f"match {operand} ({resp.get(operand)})"
            elif op == ">":
                num = parse_int(value)
                ok, msg = num is not None and num > operand, f"be bigger than {operand}"
            else:
                raise ValueError(f"unknown expected-header operator {op!r}")
            check(is_setup, ok, f"Response {req_num} header {name} is {value}, should {msg}")
        else:
            expected = fixup_header(header, resp.lower_map(), cfg)[1]
            check(is_setup, resp.get(header[0]) == expected,
                  f'Response {req_num} header {header[0]} is "{resp.get(header[0])}", not "{expected}"')
    missing_setup = setup_check(cfg, "expected_response_headers_missing")
    for header in cfg.get("expected_response_headers_missing", []):
        if isinstance(header, str):
            check(missing_setup, not resp.has(header), f'Response {req_num} includes unexpected header {header}: "{resp.get(header)}"')
        else:
            value = resp.get(header[0])
            check(missing_setup, value is None or header[1] not in value, f'Response {req_num} header {header[0]} still has value "{value}"')


def check_interim(cfg, resp):
    """Check the interim (1xx) responses the client received."""
    if "expected_interim_responses" not in cfg:
        return
    is_setup = setup_check(cfg, "expected_interim_responses")
    expected = cfg["expected_interim_responses"]
    if not expected:
        check(is_setup, not resp.interim, f"Interim response(s) {[s for s, _ in resp.interim]} received, none expected")
    for i, item in enumerate(expected):
        check(is_setup, i < len(resp.interim), f"Interim response {i + 1} not received")
        status, got = resp.interim[i]
        check(is_setup, status == item[0], f"Interim response {i + 1} status is {status}, not {item[0]}")
        got_map = {n.lower(): v for n, v in got}
        for name, value in (item[1] if len(item) > 1 else []):
            check(is_setup, name.lower() in got_map, f"Interim response {i + 1} {name} header not present.")
            check(is_setup, got_map[name.lower()] == value, f"Interim response {i + 1} header {name} is {got_map[name.lower()]}, should {value}")


def check_body(cfg, resp, uid):
    """Check the response body against the expectation (or the test uuid by default)."""
    if cfg.get("check_body") is False:
        return
    body = resp.text()
    if "expected_response_text" in cfg:
        if cfg["expected_response_text"] is not None:
            check(setup_check(cfg, "expected_response_text"), body == cfg["expected_response_text"],
                  f'Response body is "{body}", not "{cfg["expected_response_text"]}"')
    elif cfg.get("response_body") is not None:
        check(True, body == cfg["response_body"], f'Response body is "{body}", not "{cfg["response_body"]}"')
    elif resp.status not in NO_BODY_STATUS and cfg.get("request_method") != "HEAD":
        check(True, body == uid, f'Response body is "{body[:60]}", not "{uid}"')


def check_server_requests(requests, responses, state):
    """Check what the origin saw against the expectations, request by request."""
    seen_idx = 0
    for i, cfg in enumerate(requests):
        req_num = i + 1
        resp = responses[i]
        type_setup = setup_check(cfg, "expected_type")
        expected_type = cfg.get("expected_type")
        if expected_type == "cached":
            continue  # the origin does not see it
        server = state[seen_idx] if seen_idx < len(state) else None
        seen_idx += 1
        if expected_type == "not_cached":
            check(type_setup, server is not None and server["request_num"] == req_num,
                  f"Response {req_num} comes from cache ({server['request_num'] if server else 'no request'} on server)")
        for vhdr in {"etag_validated": ["if-none-match"], "lm_validated": ["if-modified-since"]}.get(expected_type, []):
            check(type_setup, server is not None, f"request {req_num} wasn't sent to server")
            check(type_setup, vhdr in server["request_headers"], f"request {req_num} doesn't have {vhdr} header")
        present_setup = setup_check(cfg, "expected_request_headers")
        for header in cfg.get("expected_request_headers", []):
            check(present_setup, server is not None, f"Request {req_num} was not seen by the server")
            if isinstance(header, str):
                check(present_setup, header.lower() in server["request_headers"], f"Request {req_num} {header} header not present.")
            else:
                got = server["request_headers"].get(header[0].lower())
                check(present_setup, got == header[1], f'Request {req_num} header {header[0]} is "{got}", not "{header[1]}"')
        missing_setup = setup_check(cfg, "expected_request_headers_missing")
        for header in cfg.get("expected_request_headers_missing", []):
            if server is None:
                break
            if isinstance(header, str):
                check(missing_setup, header.lower() not in server["request_headers"], f"Request {req_num} {header} header present.")
            else:
                got = server["request_headers"].get(header[0].lower())
                check(missing_setup, got != header[1], f'Request {req_num} header {header[0]} is "{got}"')
        if server is not None:
            for name, value in server["response_headers"]:
                if name.lower() in SKIP_ECHO_HEADERS:
                    continue
                expected = ", ".join(value) if isinstance(value, list) else value
                received = resp.get(name)
                check(True, received == expected, f'Response {req_num} header {name} is "{received}", not "{expected}"')
        if "expected_method" in cfg:
            got = server["request_method"] if server else None
            check(setup_check(cfg, "expected_method"), got == cfg["expected_method"],
                  f"Request {req_num} had method {got}, not {cfg['expected_method']}")


def describe(resp):
    """One transcript line for a response."""
    return f"{resp.status} {resp.reason} | " + "; ".join(f"{n}: {v}" for n, v in resp.headers)


def run_case(ctx, case):
    """Run one case; return (raw result, message, transcript)."""
    uid = str(uuidlib.uuid4())
    requests = copy.deepcopy(case["requests"])
    ctx.origin.configure(uid, copy.deepcopy(requests))
    responses, transcript = [], []
    try:
        for idx, cfg in enumerate(requests):
            method = cfg.get("request_method", "GET")
            target = request_target(ctx, uid, cfg)
            fields, body = request_headers(ctx, case, idx, cfg, responses[-1] if responses else None)
            transcript.append(f"> {idx + 1}: {method} {target} | " + "; ".join(f"{n}: {v}" for n, v in fields if n not in ("Test-Name",)))
            try:
                resp = exchange(ctx.addr, method, target, fields, body, ctx.timeout)
            except (OSError, ExchangeError) as exc:
                transcript.append(f"< {idx + 1}: network error: {exc}")
                return "error", f"Request {idx + 1}: {exc.__class__.__name__}: {exc}", transcript
            transcript.append(f"< {idx + 1}: " + describe(resp))
            responses.append(resp)
            check_response(case, requests, idx, resp, uid)
            if cfg.get("pause_after"):
                time.sleep(ctx.pause)
        state = ctx.origin.state(uid)
        for entry in state:
            transcript.append(f"@ origin saw request {entry['request_num']}: {entry['request_method']} | "
                              + "; ".join(f"{k}: {v}" for k, v in entry["request_headers"].items() if k not in ("test-name",)))
        check_server_requests(requests, responses, state)
        return "pass", "", transcript
    except CheckFailure as failure:
        return failure.kind.lower(), failure.message, transcript
    finally:
        ctx.origin.forget(uid)


def classify_all(results, by_id):
    """Map each case that ran to (result class, failed dependency), honouring depends_on."""
    memo = {}

    def visit(case):
        """Classify one case after its dependencies."""
        cid = case["id"]
        if cid in memo:
            return memo[cid]
        memo[cid] = ("fail", None)  # guards against a dependency cycle
        for dep in case.get("depends_on", []):
            if dep in results and dep in by_id and visit(by_id[dep])[0] not in PASS_CLASSES:
                memo[cid] = ("dependency_fail", dep)
                return memo[cid]
        outcome, message, _ = results[cid]
        kind = case.get("kind", "required")
        if outcome == "pass":
            memo[cid] = ("yes" if kind == "check" else "pass", None)
        elif outcome == "setup":
            memo[cid] = ("retry" if message == "retry" else "setup_fail", None)
        else:
            memo[cid] = ({"required": "fail", "optimal": "optional_fail", "check": "no"}[kind], None)
        return memo[cid]

    return {cid: visit(by_id[cid]) for cid in results}


# ------------------------------------------------------------------ report ----

def reason_text(case, cls, dep, raw):
    """The text after the dash of a case line."""
    kind = case.get("kind", "required")
    if cls in PASS_CLASSES:
        return f"{kind}" + (": yes" if cls == "yes" else "")
    if cls == "dependency_fail":
        own = "pass" if raw[0] == "pass" else f"{raw[0]}: {raw[1]}"
        return f"{kind}, dependency {dep} did not pass (own result: {own})"
    return f"{kind}, {cls}: {raw[1]}"


def main(argv=None):
    """Parse arguments, run the selected cases and report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", help="proxy under test, e.g. http://127.0.0.1:18180")
    ap.add_argument("--host", default="www.example.test", help="Host header to send (default www.example.test)")
    ap.add_argument("--origin-host", default="127.0.0.1")
    ap.add_argument("--origin-port", type=int, default=18189)
    ap.add_argument("--label", help="name in the CONFORMANCE line (default: the proxy URL)")
    ap.add_argument("--jobs", type=int, default=32, help="cases run in parallel (default 32)")
    ap.add_argument("--timeout", type=float, default=15.0, help="per-request timeout in seconds (default 15)")
    ap.add_argument("--pause", type=float, default=3.0, help="pause_after length in seconds (suite: 3)")
    ap.add_argument("--only", help="comma-separated suite files (cc-response), suite ids or case-id prefixes")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--json", help="write results to this JSON file")
    ap.add_argument("--expect-pass", help="comma-separated case ids that must pass (exit 1 otherwise)")
    ap.add_argument("--verbose", action="store_true", help="print each failed case's exchange transcript")
    ap.add_argument("--cases", default=DEFAULT_CASES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    suites = load_cases(args.cases)
    by_id = {c["id"]: c for _, _, cases in suites for c in cases}
    selected = select(suites, args.only)
    if args.list:
        for case in selected:
            flag = " (skip: browser_only)" if skip_reason(case) else ""
            print(f"{case['_file']:20} {case['id']:62} {case.get('kind', 'required'):8} {case['name']}{flag}")
        print(f"{len(selected)} cases")
        return 0
    if not args.proxy:
        ap.error("--proxy is required (or --list)")
    if not selected:
        ap.error(f"--only {args.only!r} selects no case")
    expect = [x.strip() for x in (args.expect_pass or "").split(",") if x.strip()]
    unknown = [x for x in expect if x not in by_id]
    if unknown:
        ap.error(f"--expect-pass: unknown case id(s): {', '.join(unknown)}")

    state = OriginState()
    try:
        server = start_origin(args.origin_host, args.origin_port, state)
    except OSError as exc:
        print(f"cache_conformance: cannot start the origin on {args.origin_host}:{args.origin_port}: {exc}", file=sys.stderr)
        return 2
    ctx = Context(args, state)
    try:
        socket.create_connection(ctx.addr, timeout=5).close()
    except OSError as exc:
        print(f"cache_conformance: proxy {args.proxy} is not reachable: {exc}", file=sys.stderr)
        server.shutdown()
        return 2

    label = args.label or args.proxy
    started = time.time()
    to_run = [c for c in selected if not skip_reason(c)]
    results = {}
    print(f"running {len(to_run)} cases ({len(selected) - len(to_run)} skipped) against {args.proxy} "
          f"(Host: {ctx.host}, origin {args.origin_host}:{args.origin_port}, jobs {args.jobs})", file=sys.stderr)
    # longest cases (most pauses) first, so the run's tail is short
    to_run.sort(key=lambda c: -(sum(1 for r in c["requests"] if r.get("pause_after")) * 3 + max(r.get("response_pause", 0) for r in c["requests"])))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_case, ctx, case): case for case in to_run}
        for n, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            case = futures[fut]
            try:
                results[case["id"]] = fut.result()
            except Exception as exc:  # a runner bug: report it, do not hide it as a case failure
                print(f"cache_conformance: internal error in {case['id']}: {exc!r}", file=sys.stderr)
                server.shutdown()
                return 2
            if n % 50 == 0:
                print(f"  {n}/{len(to_run)} done", file=sys.stderr)
    server.shutdown()
    duration = time.time() - started

    final = classify_all(results, by_id)
    records, counts = [], {"PASS": 0, "FAIL": 0, "SKIP": 0}
    classes = {}
    for case in selected:
        reason = skip_reason(case)
        if reason:
            status, cls, text, raw = "SKIP", "skipped", reason, None
        else:
            raw = results[case["id"]]
            cls, dep = final[case["id"]]
            status = "PASS" if cls in PASS_CLASSES else "FAIL"
            text = reason_text(case, cls, dep, raw)
        counts[status] += 1
        classes[cls] = classes.get(cls, 0) + 1
        print(f"{status} {case['id']} — {text}")
        if args.verbose and status == "FAIL":
            for line in raw[2]:
                print(f"      {line}")
        records.append({"id": case["id"], "file": case["_file"], "suite": case["_suite"], "name": case["name"],
                        "kind": case.get("kind", "required"), "status": status, "result": cls, "reason": text,
                        "transcript": raw[2] if raw and status == "FAIL" else None})

    kinds = {}
    for rec in records:
        if rec["status"] != "SKIP":
            k = kinds.setdefault(rec["kind"], [0, 0])
            k[1] += 1
            k[0] += rec["status"] == "PASS"
    total = len(records)
    print(f"BREAKDOWN {label}: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(kinds.items()))
          + "; " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())) + f"; {duration:.0f} s")
    print(f"CONFORMANCE {label}: passed {counts['PASS']} of {total} (failed {counts['FAIL']}, skipped {counts['SKIP']})")

    if args.json:
        per_file = {}
        for rec in records:
            f = per_file.setdefault(rec["file"], {"cases": 0, "PASS": 0, "FAIL": 0, "SKIP": 0})
            f["cases"] += 1
            f[rec["status"]] += 1
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"label": label, "proxy": args.proxy, "host": ctx.host, "duration_s": round(duration, 1),
                       "summary": {"total": total, "passed": counts["PASS"], "failed": counts["FAIL"], "skipped": counts["SKIP"],
                                   "classes": classes},
                       "files": per_file, "results": records}, fh, indent=1)
    if expect:
        bad = [rec for rec in records if rec["id"] in expect and rec["status"] != "PASS"]
        not_run = [x for x in expect if x not in {rec["id"] for rec in records}]
        for rec in bad:
            print(f"EXPECT-PASS {rec['id']}: {rec['status']} — {rec['reason']}", file=sys.stderr)
        for x in not_run:
            print(f"EXPECT-PASS {x}: not run (excluded by --only)", file=sys.stderr)
        if bad or not_run:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
