#!/usr/bin/env python3
"""WebSocket client checks for EdgeWebSocketTests, through the edge, with `websockets` (PyPI). HOST is kept for the
record; the URL's authority is the Host sent.

  echo URL HOST      10,000 echoed messages, a 1 MiB binary message, ping/pong, the close handshake; prints a JSON
                     report {"echoed", "big", "pong_ms", "close_code", "headers"}
  refused URL HOST   expects the handshake to be refused; prints {"status": HTTP status}
  hold URL HOST      connects, says "open" on stdout, then waits for the server to end the connection and prints
                     {"ended_after_s", "code"} (the origin is killed meanwhile)
"""
import json
import sys
import time

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect


def open_ws(url, host, path_headers=False):
    return connect(url, max_size=16 << 20, compression=None, open_timeout=10,
                   close_timeout=5)


STEP = "connect"  # what the echo was doing, reported with an error


def echo(url, host):
    global STEP
    report = {}
    with open_ws(url, host) as ws:
        STEP = "headers message"
        report["headers"] = json.loads(ws.recv(timeout=10)) if url.rstrip("/").endswith("/headers") else None
        for i in range(10_000):
            STEP = f"echo of message {i}"
            msg = f"message {i} " + "x" * (i % 64)
            ws.send(msg)
            got = ws.recv(timeout=10)
            if got != msg:
                raise SystemExit(f"message {i}: sent {msg!r}, got {got!r}")
        report["echoed"] = 10_000
        STEP = "1 MiB message"
        big = bytes((i * 7919) & 0xFF for i in range(1 << 20))
        ws.send(big)
        back = ws.recv(timeout=20)
        report["big"] = len(back) if back == big else -1
        STEP = "ping"
        t = time.monotonic()
        ws.ping(b"lodestar").wait(timeout=5)
        report["pong_ms"] = round((time.monotonic() - t) * 1000, 2)
        STEP = "close"
        ws.close(code=1000, reason="done")
        report["close_code"] = ws.close_code
        report["close_rcvd"] = ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None
    print(json.dumps(report))


def refused(url, host):
    try:
        with open_ws(url, host):
            print(json.dumps({"status": 101}))
    except InvalidStatus as e:
        print(json.dumps({"status": e.response.status_code}))


def hold(url, host):
    with open_ws(url, host) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        print("open", flush=True)
        start = time.monotonic()
        code = None
        try:
            ws.recv(timeout=30)
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else 1006
        except TimeoutError:
            code = "timeout"
        print(json.dumps({"ended_after_s": round(time.monotonic() - start, 3), "code": code}), flush=True)


if __name__ == "__main__":
    mode, url, host = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        {"echo": echo, "refused": refused, "hold": hold}[mode](url, host)
    except Exception as e:  # the test shows what went wrong
        print(json.dumps({"error": repr(e), "step": STEP}))
