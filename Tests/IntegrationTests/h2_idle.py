"""An HTTP/2 client that opens a connection and then opens no stream (or, with --get, one it never reads: its window is
never reopened): the connection preface and an empty SETTINGS, then it only reads (acknowledging SETTINGS and PINGs,
as a client does). Prints JSON: how many seconds passed before the edge closed the connection (null if it did not
within --wait) or reset the stream of --get (it stops there), and whether a GOAWAY came.

usage: h2_idle.py PORT [--tls SERVER_NAME CAFILE] [--wait SECONDS] [--no-ack] [--get PATH [--unfinished]]
                  [--post PATH [--length N]]
"""
import argparse
import json
import socket
import ssl
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def split_frame(buffer):
    """The first whole frame of `buffer` as (type, flags, payload) and the rest; (None, buffer) when incomplete."""
    if len(buffer) < 9:
        return None, buffer
    length = int.from_bytes(buffer[0:3], "big")
    if len(buffer) < 9 + length:
        return None, buffer
    return (buffer[3], buffer[4], buffer[9:9 + length]), buffer[9 + length:]


def get_headers(path, end_stream=True, method="GET", length=None):
    """A HEADERS frame on stream 1 (ending it unless told not to): METHOD http://www.example.test PATH (with a
    content-length when given), HPACK literals without indexing."""
    def literal(name, value):
        name, value = name.encode(), value.encode()
        return bytes([0, len(name)]) + name + bytes([len(value)]) + value
    block = (literal(":method", method) + literal(":scheme", "http") + literal(":authority", "www.example.test")
             + literal(":path", path))
    if length is not None:
        block += literal("content-length", str(length))
    flags = 5 if end_stream else 4  # END_HEADERS, and END_STREAM
    return len(block).to_bytes(3, "big") + bytes([1, flags]) + (1).to_bytes(4, "big") + block


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--tls", nargs=2, metavar=("SERVER_NAME", "CAFILE"))
    parser.add_argument("--wait", type=float, default=10)
    parser.add_argument("--no-ack", action="store_true", help="acknowledge nothing (a client that has gone quiet)")
    parser.add_argument("--get", metavar="PATH", help="open one stream: GET PATH (and never open its window)")
    parser.add_argument("--unfinished", action="store_true", help="with --get: HEADERS without END_STREAM, then nothing")
    parser.add_argument("--post", metavar="PATH", help="open one stream: POST PATH, 10 bytes of its body, then nothing")
    parser.add_argument("--length", type=int, help="with --post: the content-length it declares")
    args = parser.parse_args()
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=5)
    protocol = "h2c"
    if args.tls:
        context = ssl.create_default_context(cafile=args.tls[1])
        context.set_alpn_protocols(["h2"])
        sock = context.wrap_socket(sock, server_hostname=args.tls[0])
        protocol = sock.selected_alpn_protocol()
    opening = b""
    if args.get:
        opening = get_headers(args.get, not args.unfinished)
    elif args.post:
        opening = get_headers(args.post, False, "POST", args.length) + bytes([0, 0, 10, 0, 0]) + (1).to_bytes(4, "big") + b"x" * 10
    sock.sendall(PREFACE + EMPTY_SETTINGS + opening)
    start = time.monotonic()
    received = b""
    seen = []  # the types of the frames the edge sent
    closed_after = None
    reset_after = None  # when the edge reset the stream --get or --post opened
    answered_after = None  # when the edge's HEADERS for it came
    sock.settimeout(0.2)
    while time.monotonic() - start < args.wait:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError):
            closed_after = time.monotonic() - start
            break
        if not chunk:
            closed_after = time.monotonic() - start
            break
        received += chunk
        # As a client does: SETTINGS and PINGs acknowledged (the edge's graceful close pings before its last GOAWAY).
        while True:
            frame, received = split_frame(received)
            if frame is None:
                break
            kind, flags, payload = frame
            seen.append(kind)
            if kind == 3 and reset_after is None:
                reset_after = time.monotonic() - start
            if kind == 1 and answered_after is None:
                answered_after = time.monotonic() - start
            if args.no_ack:
                continue
            if kind == 4 and not flags & 1:
                sock.sendall(bytes([0, 0, 0, 4, 1, 0, 0, 0, 0]))
            elif kind == 6 and not flags & 1:
                sock.sendall(bytes([0, 0, 8, 6, 1, 0, 0, 0, 0]) + payload)
        if reset_after is not None:
            break
    goaway = 7 in seen
    print(json.dumps({"protocol": protocol, "closed_after": closed_after, "reset_after": reset_after,
                      "answered_after": answered_after, "goaway": goaway, "frames": seen}))


if __name__ == "__main__":
    main()
