#!/usr/bin/env python3
"""A client that holds one HTTP/2 request open while the edge shuts down (EdgeHTTP2Tests): sends GET PATH on stream 1,
prints "sent", then reads raw frames until the stream ends or the connection closes. Frames are read by hand
(hyperframe/hpack) because the `h2` state machine refuses frames after a GOAWAY, while RFC 9113 §6.8 lets open
streams finish (NIO's graceful close sends GOAWAY, PING, GOAWAY). Prints one JSON line:
  {"goaway": [error codes in order], "last_stream_ids": [...], "status": the response status or null,
   "body_bytes": n, "ended": the stream ended normally, "closed": the edge closed the connection}
  h2_graceful.py PORT HOST PATH
"""
import json
import socket
import struct
import sys
import time

import hpack
from hyperframe.frame import HeadersFrame, PingFrame, SettingsFrame, WindowUpdateFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def main():
    port, host, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    block = hpack.Encoder().encode([(":method", "GET"), (":scheme", "http"), (":authority", host), (":path", path)])
    s.sendall(PREFACE + SettingsFrame(0).serialize()
              + HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
    print("sent", flush=True)
    out = {"goaway": [], "last_stream_ids": [], "status": None, "body_bytes": 0, "ended": False, "closed": False}
    decoder = hpack.Decoder()
    buf = b""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not out["ended"]:
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            out["closed"] = True
            break
        buf += data
        while len(buf) >= 9:
            length = int.from_bytes(buf[0:3], "big")
            if len(buf) < 9 + length:
                break
            ftype, flags, sid = buf[3], buf[4], struct.unpack(">I", buf[5:9])[0] & 0x7FFFFFFF
            payload, buf = buf[9:9 + length], buf[9 + length:]
            if ftype == 4 and not flags & 1:  # SETTINGS: acknowledge
                s.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
            elif ftype == 6 and not flags & 1:  # PING: answer
                s.sendall(PingFrame(0, opaque_data=payload, flags=["ACK"]).serialize())
            elif ftype == 7:  # GOAWAY
                out["last_stream_ids"].append(struct.unpack(">I", payload[0:4])[0] & 0x7FFFFFFF)
                out["goaway"].append(struct.unpack(">I", payload[4:8])[0])
            elif ftype == 1 and sid == 1:  # HEADERS (no padding or priority from NIO)
                fields = dict(decoder.decode(payload))
                out["status"] = out["status"] or fields.get(":status")
                if flags & 1:
                    out["ended"] = True
            elif ftype == 0 and sid == 1:  # DATA
                out["body_bytes"] += len(payload)
                if length:
                    s.sendall(WindowUpdateFrame(0, window_increment=length).serialize()
                              + WindowUpdateFrame(1, window_increment=length).serialize())
                if flags & 1:
                    out["ended"] = True
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
