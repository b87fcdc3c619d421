#!/usr/bin/env python3
"""gRPC client checks for the edge's gRPC tests: calls lodestar.test.Echo (echo.proto) with grpcio (PyPI) over a
plaintext (h2c) channel to TARGET (host:port of the edge). --authority sets :authority (grpc.default_authority).
Each mode prints one JSON line (stream-hold prints {"first": true} before it) and exits 0 even when a check fails;
on an RpcError "code" is the status name (e.g. "UNAVAILABLE") and "details" its message.

  python3 grpc_client.py TARGET MODE [--authority HOST]

  unary          one Unary call (with metadata x-lodestar-test: 1) -> {"text", "origin", "metadata_keys", "code"}
  server-stream  ServerStream count=50 -> {"received", "in_order", "code"}
  bidi           Bidi, 200 messages sent from a generator while replies are read -> {"sent", "received", "in_order",
                 "code"}
  fail           Fail with status 5 and "no such thing" -> {"code": "NOT_FOUND", "details", "trailing_keys"}
                 (trailing_keys: lower-case custom trailers; grpcio keeps grpc-status/grpc-message out of them)
  deadline       Slow interval_ms=3000 with a 0.5 s timeout -> {"code": "DEADLINE_EXCEEDED", "elapsed_s"}
  stream-hold    ServerStream count=1000 interval_ms=100; prints {"first": true} after the first reply, then reads until
                 the stream ends or fails (the origin is killed meanwhile) -> {"received", "code", "details",
                 "elapsed_s"} (elapsed from the first reply)
  unavailable    one Unary call with a 5 s timeout (no origin up) -> {"code", "details", "elapsed_s"}
"""
import argparse
import json
import os
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo_pb2 as pb  # noqa: E402
import echo_pb2_grpc  # noqa: E402


def in_order(replies, texts=None):
    return all(r.index == i and (texts is None or r.text == texts[i]) for i, r in enumerate(replies))


def unary(stub):
    r = stub.Unary(pb.EchoRequest(text="hello", payload=b"\x00\x01lodestar"), timeout=10,
                   metadata=(("x-lodestar-test", "1"),))
    ok = r.text == "hello" and r.payload == b"\x00\x01lodestar"
    return {"text": r.text, "origin": r.origin, "metadata_keys": list(r.metadata_keys), "payload_ok": ok, "code": "OK"}


def server_stream(stub):
    replies = list(stub.ServerStream(pb.EchoRequest(text="s", count=50), timeout=30))
    return {"received": len(replies), "in_order": in_order(replies), "code": "OK"}


def bidi(stub):
    texts = [f"message {i}" for i in range(200)]
    replies = []
    try:
        for r in stub.Bidi((pb.EchoRequest(text=t) for t in texts), timeout=30):
            replies.append(r)
    except grpc.RpcError as e:
        return {"sent": 200, "received": len(replies), "in_order": in_order(replies, texts),
                "code": e.code().name, "details": e.details()}
    return {"sent": 200, "received": len(replies), "in_order": in_order(replies, texts), "code": "OK"}


def fail(stub):
    try:
        stub.Fail(pb.EchoRequest(text="no such thing", status_code=5), timeout=10)
        return {"code": "OK", "details": None, "trailing_keys": []}
    except grpc.RpcError as e:
        return {"code": e.code().name, "details": e.details(),
                "trailing_keys": sorted(k.lower() for k, _ in (e.trailing_metadata() or ()))}


def deadline(stub):
    start = time.monotonic()
    try:
        stub.Slow(pb.EchoRequest(text="slow", interval_ms=3000), timeout=0.5)
        code, details = "OK", None
    except grpc.RpcError as e:
        code, details = e.code().name, e.details()
    return {"code": code, "details": details, "elapsed_s": round(time.monotonic() - start, 3)}


def stream_hold(stub):
    received, start = 0, None
    code, details = "OK", None
    try:
        for _ in stub.ServerStream(pb.EchoRequest(text="hold", count=1000, interval_ms=100), timeout=150):
            received += 1
            if received == 1:
                start = time.monotonic()
                print(json.dumps({"first": True}), flush=True)
    except grpc.RpcError as e:
        code, details = e.code().name, e.details()
    elapsed = round(time.monotonic() - start, 3) if start else None
    return {"received": received, "code": code, "details": details, "elapsed_s": elapsed}


def unavailable(stub):
    start = time.monotonic()
    try:
        stub.Unary(pb.EchoRequest(text="anyone?"), timeout=5)
        code, details = "OK", None
    except grpc.RpcError as e:
        code, details = e.code().name, e.details()
    return {"code": code, "details": details, "elapsed_s": round(time.monotonic() - start, 3)}


MODES = {"unary": unary, "server-stream": server_stream, "bidi": bidi, "fail": fail, "deadline": deadline,
         "stream-hold": stream_hold, "unavailable": unavailable}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("mode", choices=MODES)
    ap.add_argument("--authority")
    args = ap.parse_args()
    options = [("grpc.default_authority", args.authority)] if args.authority else []
    with grpc.insecure_channel(args.target, options=options) as channel:
        try:
            report = MODES[args.mode](echo_pb2_grpc.EchoStub(channel))
        except grpc.RpcError as e:
            report = {"code": e.code().name, "details": e.details()}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
