#!/usr/bin/env python3
"""WebSocket over HTTP/2 (RFC 8441) through the edge, with a raw client (hyperframe/hpack), for EdgeWebSocketTests:
reads the edge's SETTINGS (ENABLE_CONNECT_PROTOCOL), opens an extended CONNECT (:protocol websocket) on stream 1,
sends N masked text messages as DATA and reads their echoes, then the close handshake. Prints one JSON line:
  {"enable_connect_protocol": value or null, "status": ":status of the CONNECT", "echoed": n,
   "close_code": the origin's close code or null, "stream_ended": bool}
  h2_websocket.py PORT HOST PATH [N]
"""
import json
import os
import socket
import struct
import sys
import time

import hpack
from hyperframe.frame import DataFrame, HeadersFrame, PingFrame, SettingsFrame, WindowUpdateFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def ws_frame(opcode, payload):
    """A client frame: FIN, masked (RFC 6455 §5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_frames(buf):
    """Unmasked server frames in buf: [(opcode, payload)], rest."""
    out = []
    while len(buf) >= 2:
        n = buf[1] & 0x7F
        start = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, start = struct.unpack(">H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, start = struct.unpack(">Q", buf[2:10])[0], 10
        if len(buf) < start + n:
            break
        out.append((buf[0] & 0x0F, buf[start:start + n]))
        buf = buf[start + n:]
    return out, buf


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf, self.decoder = b"", hpack.Decoder()
        self.settings = {}

    def frames(self):
        """Reads until at least one frame is complete; yields (type, flags, stream, payload)."""
        while True:
            while len(self.buf) >= 9:
                length = int.from_bytes(self.buf[0:3], "big")
                if len(self.buf) < 9 + length:
                    break
                ftype, flags = self.buf[3], self.buf[4]
                sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
                payload, self.buf = self.buf[9:9 + length], self.buf[9 + length:]
                if ftype == 4 and not flags & 1:
                    for i in range(0, len(payload), 6):
                        k, v = struct.unpack(">HI", payload[i:i + 6])
                        self.settings[k] = v
                    self.s.sendall(SettingsFrame(0, flags=["ACK"]).serialize())
                elif ftype == 6 and not flags & 1:
                    self.s.sendall(PingFrame(0, opaque_data=payload, flags=["ACK"]).serialize())
                elif ftype == 0 and length:
                    self.s.sendall(WindowUpdateFrame(0, window_increment=length).serialize()
                                   + WindowUpdateFrame(sid, window_increment=length).serialize())
                yield ftype, flags, sid, payload
            data = self.s.recv(65536)
            if not data:
                return
            self.buf += data


def main():
    port, host, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    c = Conn(port)
    c.s.sendall(PREFACE + SettingsFrame(0).serialize())
    out = {"enable_connect_protocol": None, "status": None, "echoed": 0, "close_code": None, "stream_ended": False}
    frames = c.frames()
    deadline = time.monotonic() + 20
    for ftype, flags, sid, payload in frames:  # the server's SETTINGS first
        if ftype == 4:
            break
    out["enable_connect_protocol"] = c.settings.get(8)
    block = hpack.Encoder().encode([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                    (":path", path), (":authority", host), ("sec-websocket-version", "13")])
    c.s.sendall(HeadersFrame(1, data=block, flags=["END_HEADERS"]).serialize())
    ws_buf, sent, closing = b"", 0, False
    for ftype, flags, sid, payload in frames:
        if time.monotonic() > deadline:
            break
        if sid != 1:
            continue
        if ftype == 1:
            out["status"] = dict(c.decoder.decode(payload)).get(":status")
            if out["status"] != "200":
                break
            c.s.sendall(DataFrame(1, data=ws_frame(1, b"message 0")).serialize())
            sent = 1
        elif ftype == 0:
            ws_buf += payload
            got, ws_buf = ws_frames(ws_buf)
            for opcode, data in got:
                if opcode == 1 and data == f"message {out['echoed']}".encode():
                    out["echoed"] += 1
                    if sent < count:
                        c.s.sendall(DataFrame(1, data=ws_frame(1, f"message {sent}".encode())).serialize())
                        sent += 1
                    elif not closing:
                        closing = True
                        c.s.sendall(DataFrame(1, data=ws_frame(8, struct.pack(">H", 1000))).serialize())
                elif opcode == 8:
                    out["close_code"] = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005
            if flags & 1:
                out["stream_ended"] = True
                break
        elif ftype == 3:  # RST_STREAM
            break
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
