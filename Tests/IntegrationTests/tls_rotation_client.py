#!/usr/bin/env python3
"""Load for the certificate rotation test (EdgeTLSTests): for SECONDS, THREADS threads each open a new TLS connection
per request (so every handshake sees the certificate in force) and GET /echo; one more thread keeps one keep-alive
connection and sends a request every 100 ms on it (an established connection must survive the reload). The
certificates are not verified (the test checks which one is served with openssl). Prints "running" once started,
then one JSON line: {"requests", "failed", "errors": [first few], "kept_alive_requests", "kept_alive_failed"}.
  tls_rotation_client.py PORT SECONDS [THREADS]
"""
import http.client
import json
import ssl
import sys
import threading
import time

port, seconds = int(sys.argv[1]), float(sys.argv[2])
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
lock = threading.Lock()
stats = {"requests": 0, "failed": 0, "errors": [], "kept_alive_requests": 0, "kept_alive_failed": 0}
stop = time.monotonic() + seconds


def fresh():
    while time.monotonic() < stop:
        try:
            c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
            c.request("GET", "/echo?rotation=1", headers={"Host": "a.example.test", "Connection": "close"})
            r = c.getresponse()
            r.read()
            ok = r.status == 200
            c.close()
        except Exception as e:  # noqa: BLE001 - every failure counts
            ok = False
            with lock:
                if len(stats["errors"]) < 5:
                    stats["errors"].append(repr(e))
        with lock:
            stats["requests"] += 1
            stats["failed"] += 0 if ok else 1


def kept():
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    while time.monotonic() < stop:
        try:
            c.request("GET", "/echo?kept=1", headers={"Host": "a.example.test"})
            r = c.getresponse()
            r.read()
            ok = r.status == 200
        except Exception:  # noqa: BLE001
            ok = False
        with lock:
            stats["kept_alive_requests"] += 1
            stats["kept_alive_failed"] += 0 if ok else 1
        time.sleep(0.1)


workers = [threading.Thread(target=fresh) for _ in range(threads)] + [threading.Thread(target=kept)]
for w in workers:
    w.start()
print("running", flush=True)
for w in workers:
    w.join()
print(json.dumps(stats), flush=True)
