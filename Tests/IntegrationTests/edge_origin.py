#!/usr/bin/env python3
"""Origin server for the edge integration tests (Tests/IntegrationTests/Edge*.swift).

A threaded HTTP/1.1 server on 127.0.0.1:PORT (--host for another address; HTTPS with --tls-cert/--tls-key). Every response carries `X-Origin: NAME`, `Server: secret-origin/1.0`
and `X-Powered-By: php` (the edge must hide the last one and, unless the route says otherwise, the Server header).
Request bodies are drained as a stream (Content-Length or chunked), hashed and counted, so a 1 GiB upload costs no
memory. A path may start with `/expose`, which is ignored when choosing the endpoint (a second route in the tests).

Endpoints (query parameters in brackets):
  /healthz                        200 "ok" (not counted, no delay)
  /count                          JSON {"name", "count", "connections" (that carried counted requests),
                                  "requests": [request lines]} (not counted, no delay)
  /reset                          clears the counter (not counted)
  /bytes/N [type=...]             N bytes of the test pattern (see `pattern`), Content-Length framing
  /text/N [type=text/plain]       N bytes of ASCII text (compressible)
  /gzip [n=4096]                  the text of /text/N, gzip-compressed, with Content-Encoding: gzip
  /stream/N [chunked=1]           N bytes of the pattern written in 1 MiB pieces (Content-Length or chunked)
  /redirect                       302 with Location/Content-Location naming this origin's own address
  /reply-headers                  hop-by-hop and secret response headers (Connection: X-Secret, X-Secret: 1, ...)
  /status/CODE                    an answer with that status code
  /interim [code=103]             an interim response (Link: </style.css>; rel=preload) before a cacheable 200
  /cache-fail?on=1|0              makes every /cache/ answer a 500 (or not) (not counted)
  /cache/ANY [pattern=1, cc=, etag=, lm=SECONDS (before the path was first served), vary=, n=BYTES, status=, expires=SECONDS, ms=DELAY]
                                  a cacheable-or-not answer for the cache tests: those headers (Date always), a body of n
                                  bytes starting "serial=K path=P vary=V;" (K counts this origin's answers to that path,
                                  V the request's values of the fields named by vary), 304 to a matching If-None-Match
                                  or If-Modified-Since; ms= waits before answering (counted on arrival)
  /keepalive/T/...                 the rest of the path as below, with `Keep-Alive: timeout=T` on the answer
  /fragile/...                    the rest of the path as below on a connection's first request; on a later one the
                                  connection is closed without an answer and the body unread (counted), as an origin
                                  whose keep-alive timeout crossed the request
  anything else (/echo, ...)      JSON {"name", "method", "path", "version", "headers": [[k, v], ...],
                                        "length": body bytes, "sha256" or "crc32": of the body}
                                  [hash=sha256|crc32|none, pause_ms=N: wait before reading the body]
Every counted request waits --delay-ms first.
"""

import argparse
import gzip
import hashlib
import json
import socket
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PIECE = 1 << 20
_BLOCK = None


def pattern_block():
    """65521 pseudo-random bytes (an LCG, the same one EdgeSupport.swift uses); the pattern repeats this block."""
    global _BLOCK
    if _BLOCK is None:
        x = 12345
        out = bytearray(65521)
        for i in range(65521):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            out[i] = (x >> 16) & 0xFF
        _BLOCK = bytes(out)
    return _BLOCK


def pattern(n, offset=0):
    block = pattern_block()
    start = offset % len(block)
    reps = (start + n) // len(block) + 1
    return (block * reps)[start:start + n]


def text(n):
    """Compressible ASCII text, the same as EdgeSupport.swift's `EdgePattern.text`."""
    line = b"lodestar edge test line, the quick brown fox jumps over the lazy dog 0123456789\n"
    reps = n // len(line) + 1
    return (line * reps)[:n]


class Origin:
    def __init__(self, name, delay_ms):
        self.name = name
        self.delay = delay_ms / 1000.0
        self.lock = threading.Lock()
        self.count = 0
        self.connections = 0
        self.requests = []

    def note(self, line):
        with self.lock:
            self.count += 1
            self.requests.append(line)
            if len(self.requests) > 2000:
                del self.requests[:1000]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "secret-origin/1.0"
    sys_version = ""
    rbufsize = 1 << 20

    def setup(self):
        super().setup()
        self.served_here = 0
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError:
            pass

    def log_message(self, fmt, *args):  # quiet: the tests read /count instead
        pass

    @property
    def origin(self):
        return self.server.origin

    # -- body reading -----------------------------------------------------------------------------------------------

    def drain_body(self, hasher):
        """Reads the request body (Content-Length or chunked) in pieces; returns its length."""
        te = self.headers.get("Transfer-Encoding")
        total = 0
        buf = bytearray(PIECE)
        view = memoryview(buf)
        if te is not None and te.strip().lower() == "chunked":
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunk size")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:  # trailers up to the empty line
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                left = size
                while left > 0:
                    n = self.rfile.readinto(view[:min(left, PIECE)])
                    if not n:
                        raise ConnectionError("eof in chunk")
                    hasher(view[:n])
                    left -= n
                    total += n
                self.rfile.readline(16)  # CRLF after the chunk
            return total
        length = int(self.headers.get("Content-Length") or 0)
        left = length
        while left > 0:
            n = self.rfile.readinto(view[:min(left, PIECE)])
            if not n:
                raise ConnectionError("eof in body")
            hasher(view[:n])
            left -= n
            total += n
        return total

    # -- responses --------------------------------------------------------------------------------------------------

    def head_bytes(self, status, headers, length=None, chunked=False):
        lines = ["HTTP/1.1 %d %s" % (status, self.responses.get(status, ("X",))[0])]
        lines.append("Server: secret-origin/1.0")
        lines.append("X-Origin: " + self.origin.name)
        lines.append("X-Powered-By: php")
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        elif length is not None:
            lines.append("Content-Length: %d" % length)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def reply(self, status, body=b"", ctype="text/plain", headers=()):
        extra = [("Content-Type", ctype)] if ctype else []
        data = self.head_bytes(status, extra + list(headers), length=len(body))
        if self.command != "HEAD":
            data += body
        self.wfile.write(data)
        self.wfile.flush()

    def handle_any(self):
        url = urlsplit(self.path)
        path = url.path
        if path.startswith("/expose"):
            path = path[len("/expose"):] or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [p for p in path.split("/") if p]
        first = parts[0] if parts else ""

        if first == "cache-fail":  # /cache-fail?on=1: every /cache/ answer is a 500 until ?on=0 (not counted)
            self.drain_body(lambda b: None)
            self.origin.failing = query.get("on") == "1"
            return self.reply(200, b"ok\n")
        if first in ("healthz", "count", "reset"):
            self.drain_body(lambda b: None)
            if first == "healthz":
                return self.reply(200, b"ok\n")
            if first == "count":
                with self.origin.lock:
                    body = json.dumps({"name": self.origin.name, "count": self.origin.count,
                                       "connections": self.origin.connections,
                                       "requests": list(self.origin.requests)}).encode()
                return self.reply(200, body, "application/json")
            with self.origin.lock:
                self.origin.count = 0
                self.origin.requests = []
            return self.reply(200, b"reset\n")

        self.origin.note("%s %s %s" % (self.command, self.path, self.request_version))
        self.served_here += 1
        if self.served_here == 1:
            with self.origin.lock:
                self.origin.connections += 1
        extra = []
        if first == "fragile":
            if self.served_here > 1:
                self.close_connection = True
                return
            parts = parts[1:]
            first = parts[0] if parts else ""
        elif first == "keepalive" and len(parts) > 1:
            extra = [("Keep-Alive", "timeout=%s" % parts[1])]
            parts = parts[2:]
            first = parts[0] if parts else ""
        if self.origin.delay > 0:
            time.sleep(self.origin.delay)

        if first == "bytes" and len(parts) > 1:
            self.drain_body(lambda b: None)
            return self.reply(200, pattern(int(parts[1])), query.get("type", "application/octet-stream"))
        if first == "text" and len(parts) > 1:
            self.drain_body(lambda b: None)
            return self.reply(200, text(int(parts[1])), query.get("type", "text/plain"))
        if first == "gzip":
            self.drain_body(lambda b: None)
            body = gzip.compress(text(int(query.get("n", "4096"))), mtime=0)
            return self.reply(200, body, query.get("type", "text/plain"), [("Content-Encoding", "gzip")])
        if first == "stream" and len(parts) > 1:
            self.drain_body(lambda b: None)
            return self.stream(int(parts[1]), query.get("chunked") == "1", query.get("type", "application/octet-stream"),
                               query.get("trailer") == "1")
        if first == "redirect":
            self.drain_body(lambda b: None)
            host, port = self.server.server_address[:2]
            return self.reply(302, b"", "text/plain",
                              [("Location", "http://%s:%d/target?x=1" % (host, port)),
                               ("Content-Location", "http://%s:%d/here" % (host, port)),
                               ("Link", "<http://elsewhere.example/>; rel=next")])
        if first == "reply-headers":
            self.drain_body(lambda b: None)
            return self.reply(200, b"secret headers\n", "text/plain",
                              [("Connection", "X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "timeout=5"),
                               ("Proxy-Connection", "keep-alive"), ("X-Kept", "yes")])
        if first == "cache":
            self.drain_body(lambda b: None)
            return self.cacheable(url.path, query)
        if first == "interim":  # /interim?code=103: an interim response with a Link field, then 200 (cacheable)
            self.drain_body(lambda b: None)
            code = int(query.get("code", "103"))
            self.wfile.write(("HTTP/1.1 %d Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" % code).encode())
            self.wfile.flush()
            return self.reply(200, b"final\n", "text/plain", [("Cache-Control", "max-age=60")])
        if first == "status" and len(parts) > 1:
            self.drain_body(lambda b: None)
            code = int(parts[1])
            return self.reply(code, ("status %d from %s\n" % (code, self.origin.name)).encode())

        # echo
        kind = query.get("hash", "sha256")
        if kind == "crc32":
            state = [0]

            def hasher(b):
                state[0] = zlib.crc32(b, state[0])
        elif kind == "none":
            def hasher(b):
                pass
        else:
            h = hashlib.sha256()
            hasher = h.update
        if "pause_ms" in query:  # let the client's body pile up in front of us (backpressure tests)
            time.sleep(int(query["pause_ms"]) / 1000.0)
        start = time.time()
        length = self.drain_body(hasher)
        reply = {"name": self.origin.name, "method": self.command, "path": self.path, "version": self.request_version,
                 "headers": [[k, v] for k, v in self.headers.items()], "length": length,
                 "seconds": round(time.time() - start, 3)}
        if kind == "crc32":
            reply["crc32"] = "%08x" % state[0]
        elif kind != "none":
            reply["sha256"] = h.hexdigest()
        self.reply(200, json.dumps(reply).encode(), "application/json", extra)

    def cacheable(self, path, query):
        """The /cache/ endpoint: response headers from the query, validators honoured, a serial number per path."""
        from email.utils import formatdate
        now = time.time()
        if getattr(self.origin, "failing", False):
            self.origin.note("%s %s %s" % (self.command, self.path, self.request_version))
            return self.reply(500, b"origin failing\n")
        with self.origin.lock:
            serials = self.origin.__dict__.setdefault("serials", {})
            serials[path] = serials.get(path, 0) + 1
            serial = serials[path]
            born = self.origin.__dict__.setdefault("born", {}).setdefault(path, int(now))
        if "ms" in query:
            time.sleep(int(query["ms"]) / 1000.0)
        headers = [("Date", formatdate(now, usegmt=True))]
        if "cc" in query:
            headers.append(("Cache-Control", query["cc"]))
        etag = query.get("etag")
        if etag is not None:
            etag = etag if etag.startswith('"') or etag.startswith("W/") else '"%s"' % etag
            headers.append(("ETag", etag))
        lm = None
        if "lm" in query:
            lm = formatdate(born - int(query["lm"]), usegmt=True)  # stable per path: validators must match
            headers.append(("Last-Modified", lm))
        if "expires" in query:
            headers.append(("Expires", formatdate(now + int(query["expires"]), usegmt=True)))
        vary = query.get("vary")
        if vary:
            headers.append(("Vary", vary))
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if (etag is not None and inm is not None and etag in [t.strip() for t in inm.split(",")]) or \
                (etag is None and inm is None and lm is not None and ims == lm):
            data = self.head_bytes(304, headers)
            self.wfile.write(data)
            self.wfile.flush()
            return
        seen = ",".join(self.headers.get(v.strip(), "-") for v in vary.split(",")) if vary else "-"
        start = ("serial=%d path=%s vary=%s;" % (serial, path, seen)).encode()
        n = max(int(query.get("n", "100")), len(start))
        if query.get("pattern") == "1":  # position-dependent bytes after the header line (to check offsets)
            body = start + pattern(n - len(start), len(start))
        else:
            body = start + b"." * (n - len(start))
        self.reply(int(query.get("status", "200")), body, "text/plain", headers)

    def stream(self, n, chunked, ctype, trailer=False):
        block = pattern_block()
        big = pattern(PIECE + len(block))
        view = memoryview(big)
        if self.command == "HEAD":
            return self.wfile.write(self.head_bytes(200, [("Content-Type", ctype)], length=n))
        self.wfile.write(self.head_bytes(200, [("Content-Type", ctype)], length=n, chunked=chunked))
        sent = 0
        while sent < n:
            k = min(PIECE, n - sent)
            off = sent % len(block)
            piece = view[off:off + k]
            if chunked:
                self.wfile.write(b"%x\r\n" % k)
                self.wfile.write(piece)
                self.wfile.write(b"\r\n")
            else:
                self.wfile.write(piece)
            sent += k
        if chunked and trailer:  # ?trailer=1: a trailer section (a field, and a connection-specific one to drop)
            self.wfile.write(b"0\r\nServer-Timing: total;dur=%d\r\nConnection: close-not\r\n\r\n" % n)
        elif chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self):
        self.handle_any()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = do_GET


setattr(Handler, "do_M-SEARCH", Handler.do_GET)  # any method: the edge must forward it as written


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    tls = None  # an ssl.SSLContext: each connection is wrapped (and its handshake done) in its own thread

    def finish_request(self, request, client_address):
        if self.tls is not None:
            request = self.tls.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-client-ca", help="require a client certificate issued by this CA (mutual TLS)")
    args = ap.parse_args()
    server = Server((args.host, args.port), Handler)
    if args.tls_cert:
        import ssl
        server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.tls.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            server.tls.verify_mode = ssl.CERT_REQUIRED
            server.tls.load_verify_locations(args.tls_client_ca)
    server.origin = Origin(args.name, args.delay_ms)
    pattern_block()
    print("origin %s listening on %s:%d%s" % (args.name, args.host, args.port, (" (TLS, client certificate required)" if args.tls_client_ca else " (TLS)") if args.tls_cert else ""), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
