#!/usr/bin/env python3
"""gRPC origin for the edge's gRPC tests: the lodestar.test.Echo service (echo.proto) with grpcio (PyPI), plaintext
HTTP/2 (h2c) on 127.0.0.1:PORT, a thread pool of 16. Prints "ready" when listening.

  python3 grpc_origin.py --port P [--name N] [--cert PEM --key PEM]   (with --cert: TLS, h2 by ALPN)

  Unary         one reply: the text/payload back, origin = N, metadata_keys = the sorted lower-case invocation
                metadata keys received (what grpcio hands the application: user-agent, x-forwarded-for, ...)
  ServerStream  `count` replies (index 0..count-1), `interval_ms` apart; stops early if the call is cancelled
  Bidi          one reply per request, as each arrives (index counts from 0)
  Fail          aborts with status `status_code` and details `text`, plus a custom trailer x-lodestar-trailer: N
  Slow          sleeps `interval_ms` (or until the call is cancelled / its deadline passes), then replies
"""
import argparse
import os
import sys
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo_pb2  # noqa: E402
import echo_pb2_grpc  # noqa: E402

CODES = {c.value[0]: c for c in grpc.StatusCode}


class Echo(echo_pb2_grpc.EchoServicer):
    def __init__(self, name):
        self.name = name

    def reply(self, req, index=0, **kw):
        return echo_pb2.EchoReply(text=req.text, index=index, payload=req.payload, origin=self.name, **kw)

    def Unary(self, req, context):
        keys = sorted({k.lower() for k, _ in context.invocation_metadata()})
        return self.reply(req, metadata_keys=keys)

    def ServerStream(self, req, context):
        for i in range(req.count):
            if i and req.interval_ms:
                time.sleep(req.interval_ms / 1000)
            if not context.is_active():
                return
            yield self.reply(req, index=i)

    def Bidi(self, requests, context):
        for i, req in enumerate(requests):
            yield self.reply(req, index=i)

    def Fail(self, req, context):
        context.set_trailing_metadata((("x-lodestar-trailer", self.name),))
        context.abort(CODES.get(req.status_code, grpc.StatusCode.UNKNOWN), req.text)

    def Slow(self, req, context):
        end = time.monotonic() + req.interval_ms / 1000
        while context.is_active() and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        return self.reply(req)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="origin")
    ap.add_argument("--cert", help="PEM certificate chain: serve over TLS (h2 by ALPN) instead of h2c")
    ap.add_argument("--key", help="PEM private key of --cert")
    args = ap.parse_args()
    # grpcio sets SO_REUSEPORT by default, which would let two origins share a port silently; turn it off.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[("grpc.so_reuseport", 0)])
    echo_pb2_grpc.add_EchoServicer_to_server(Echo(args.name), server)
    if args.cert:
        with open(args.cert, "rb") as c, open(args.key, "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        server.add_secure_port(f"127.0.0.1:{args.port}", creds)
    else:
        server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print("ready", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(0)


if __name__ == "__main__":
    main()
