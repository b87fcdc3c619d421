#!/usr/bin/env python3
"""A logging HTTP proxy for the status page test: every request the browser makes comes through here (Chromium
runs with --proxy-server and --proxy-bypass-list=<-loopback>), is written to the log file as one URL per line,
and plain-HTTP requests to 127.0.0.1 are forwarded. CONNECT (HTTPS) and every other host are refused, so a page
that reached out would fail and be logged. Usage: page_proxy.py PORT LOGFILE
"""
import http.client
import http.server
import socketserver
import sys
import threading
import urllib.parse

PORT = int(sys.argv[1])
LOG = sys.argv[2]
LOCK = threading.Lock()


def record(line):
    with LOCK:
        with open(LOG, "a") as f:
            f.write(line + "\n")


class Proxy(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_CONNECT(self):
        record("CONNECT " + self.path)
        self.send_error(403, "refused by the test proxy")

    def forward(self):
        record(self.command + " " + self.path)
        url = urllib.parse.urlsplit(self.path)
        if url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost"):
            self.send_error(403, "refused by the test proxy")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
        target = url.path + ("?" + url.query if url.query else "")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        conn.request(self.command, target or "/", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    do_GET = forward
    do_POST = forward
    do_HEAD = forward


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("127.0.0.1", PORT), Proxy).serve_forever()
