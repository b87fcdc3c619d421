#!/usr/bin/env python3
"""Malformed HTTP/2 header sections (RFC 9113 §8.2-8.3) against the edge, for EdgeHTTP2Tests: one h2c connection,
one stream per case, sent with PyPI `h2`'s own checks off; then a well-formed GET on the same connection.

  h2_malformed.py PORT HOST

Prints one JSON object: case name -> "reset:N" (RST_STREAM with error code N), "status:S" (an answer), or "none"
(nothing within 3 s); "after" is the final GET's outcome and "goaway" the error code of a GOAWAY (null if none).
"""
import json
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events


def base(host, method="GET", path="/echo"):
    return [(":method", method), (":scheme", "http"), (":authority", host), (":path", path)]


def cases(host):
    """(name, request fields, body or None, trailer fields or None)"""
    b = base(host)
    post = base(host, "POST")
    return [
        ("upper-case-name", b + [("X-Upper", "1")], None, None),
        ("connection", b + [("connection", "close")], None, None),
        ("transfer-encoding", post + [("transfer-encoding", "chunked")], b"abc", None),
        ("te-gzip", b + [("te", "gzip")], None, None),
        ("cr-in-value", b + [("x-a", "a\rb")], None, None),
        ("nul-in-value", b + [("x-a", "a\x00b")], None, None),
        ("space-in-path", base(host, path="/a b"), None, None),
        ("pseudo-after-regular", [(":method", "GET"), (":scheme", "http"), ("x-a", "1"), (":path", "/echo"),
                                  (":authority", host)], None, None),
        ("missing-path", [(":method", "GET"), (":scheme", "http"), (":authority", host)], None, None),
        ("repeated-method", b + [(":method", "GET")], None, None),
        ("unknown-pseudo", b + [(":foo", "bar")], None, None),
        ("status-in-request", b + [(":status", "200")], None, None),
        ("empty-path", base(host, path=""), None, None),
        ("body-upper-case-name", post + [("X-Upper", "1")], b"abc", None),
        ("pseudo-in-trailers", post, b"abc", [(":path", "/x")]),
        ("te-trailers", b + [("te", "trailers")], None, None),
        ("good-post-trailers", post, b"abc", [("x-checksum", "1")]),
    ]


def main():
    port, host = int(sys.argv[1]), sys.argv[2]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
                                       normalize_outbound_headers=False, validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    outcomes, goaway = {}, None

    def run(fields, body, trailers):
        nonlocal goaway
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, fields, end_stream=body is None)
        if body is not None:
            conn.send_data(sid, body, end_stream=trailers is None)
        if trailers is not None:
            conn.send_headers(sid, trailers, end_stream=True)
        sock.sendall(conn.data_to_send())
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                return "closed"
            outcome = None
            for e in conn.receive_data(data):
                if isinstance(e, h2.events.StreamReset) and e.stream_id == sid:
                    outcome = "reset:%d" % int(e.error_code)
                elif isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
                    outcome = "status:%s" % dict(e.headers).get(":status")
                elif isinstance(e, h2.events.ConnectionTerminated):
                    goaway = int(e.error_code)
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            if outcome:
                return outcome
        return "none"

    for name, fields, body, trailers in cases(host):
        outcomes[name] = run(fields, body, trailers)
    outcomes["after"] = run(base(host), None, None)
    outcomes["goaway"] = goaway
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main()
