#!/usr/bin/env python3
"""Bulk HTTP client for the edge integration tests: streams a large request or response body through the edge.

  edge_client.py upload   --port P --host H --size N [--chunked] [--pause-ms M]   POST /echo?hash=crc32 with N bytes
  edge_client.py download --port P --host H --size N [--chunked] [--pause-ms M]   GET /stream/N and check every byte
(--pause-ms: a consumer that stops reading for a while, so the edge has to apply backpressure.)

Prints one JSON line: {"mode", "status", "bytes", "crc32", "expected_crc32", "origin": {...}, "seconds", "mib_per_s"}
and exits 0 when the status is 200 and the body made it intact (length and CRC-32), 1 otherwise.
The bytes are edge_origin.py's pattern, so both ends agree without sharing a file.
"""

import argparse
import json
import socket
import sys
import time
import zlib

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from edge_origin import PIECE, pattern, pattern_block  # noqa: E402


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self):
        data = self.sock.recv(PIECE)
        if not data:
            raise ConnectionError("connection closed by the edge")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        i = self.buf.index(b"\r\n")
        out = bytes(self.buf[:i])
        del self.buf[:i + 2]
        return out

    def head(self):
        status_line = self.line().decode("latin-1")
        headers = []
        while True:
            l = self.line()
            if not l:
                break
            k, v = l.decode("latin-1").split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
        return int(status_line.split()[1]), headers

    def exactly(self, n, sink):
        """Passes n body bytes to sink in pieces."""
        left = n
        if self.buf:
            take = min(left, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            left -= take
        buf = bytearray(PIECE)
        view = memoryview(buf)
        while left > 0:
            got = self.sock.recv_into(view[:min(left, PIECE)])
            if not got:
                raise ConnectionError("connection closed with %d body bytes missing" % left)
            sink(view[:got])
            left -= got

    def body(self, headers, sink):
        h = dict(headers)
        if h.get("transfer-encoding", "").lower() == "chunked":
            total = 0
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    return total
                self.exactly(size, sink)
                total += size
                self.line()
        n = int(h.get("content-length", "0"))
        self.exactly(n, sink)
        return n


def expected_crc(size):
    block = pattern_block()
    big = memoryview(pattern(PIECE + len(block)))
    crc = 0
    done = 0
    while done < size:
        k = min(PIECE, size - done)
        off = done % len(block)
        crc = zlib.crc32(big[off:off + k], crc)
        done += k
    return crc


def upload(args):
    block = pattern_block()
    big = memoryview(pattern(PIECE + len(block)))
    s = connect(args.port)
    target = "/echo?hash=crc32" + ("&pause_ms=%d" % args.pause_ms if args.pause_ms else "")
    head = "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n" % (target, args.host)
    head += "Transfer-Encoding: chunked\r\n\r\n" if args.chunked else "Content-Length: %d\r\n\r\n" % args.size
    start = time.time()
    s.sendall(head.encode())
    sent = 0
    crc = 0
    while sent < args.size:
        k = min(PIECE, args.size - sent)
        off = sent % len(block)
        piece = big[off:off + k]
        crc = zlib.crc32(piece, crc)
        if args.chunked:
            s.sendall(b"%x\r\n" % k)
            s.sendall(piece)
            s.sendall(b"\r\n")
        else:
            s.sendall(piece)
        sent += k
    if args.chunked:
        s.sendall(b"0\r\n\r\n")
    r = Reader(s)
    status, headers = r.head()
    chunks = []
    r.body(headers, lambda b: chunks.append(bytes(b)))
    seconds = time.time() - start
    body = b"".join(chunks)
    try:
        origin = json.loads(body)
    except ValueError:
        origin = {"raw": body[:300].decode("latin-1")}
    got_crc = origin.get("crc32")
    ok = status == 200 and origin.get("length") == args.size and got_crc == "%08x" % crc
    print(json.dumps({"mode": "upload", "status": status, "bytes": origin.get("length"), "crc32": got_crc,
                      "expected_crc32": "%08x" % crc, "origin": {k: v for k, v in origin.items() if k != "headers"},
                      "seconds": round(seconds, 3), "mib_per_s": round(args.size / (1 << 20) / seconds, 1)}), flush=True)
    return 0 if ok else 1


def download(args):
    s = connect(args.port)
    path = "/stream/%d%s" % (args.size, "?chunked=1" if args.chunked else "")
    start = time.time()
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, args.host)).encode())
    r = Reader(s)
    status, headers = r.head()
    if args.pause_ms:  # stop reading: the origin keeps sending, the edge must not buffer it all
        time.sleep(args.pause_ms / 1000.0)
    state = [0]

    def sink(b):
        state[0] = zlib.crc32(b, state[0])

    n = r.body(headers, sink)
    seconds = time.time() - start
    want = expected_crc(args.size)
    ok = status == 200 and n == args.size and state[0] == want
    print(json.dumps({"mode": "download", "status": status, "bytes": n, "crc32": "%08x" % state[0],
                      "expected_crc32": "%08x" % want, "seconds": round(seconds, 3),
                      "mib_per_s": round(n / (1 << 20) / max(seconds, 1e-6), 1)}), flush=True)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["upload", "download"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="www.example.test")
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--chunked", action="store_true")
    ap.add_argument("--pause-ms", type=int, default=0,
                    help="upload: the origin waits this long before reading the body; download: the client waits "
                         "this long after the response head before reading the body")
    args = ap.parse_args()
    return upload(args) if args.mode == "upload" else download(args)


if __name__ == "__main__":
    sys.exit(main())
