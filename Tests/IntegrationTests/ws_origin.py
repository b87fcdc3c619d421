#!/usr/bin/env python3
"""WebSocket origin for EdgeWebSocketTests: a `websockets` (PyPI) echo server on 127.0.0.1:PORT.

Every path echoes text and binary messages as they came (up to 16 MiB); the library answers pings and the close
handshake. The upgrade request's headers are echoed back once, as the first message, when the path is /headers.
Plain HTTP requests (no upgrade) get 426. Prints "ready" when listening.
"""
import argparse
import asyncio
import json

import websockets
from websockets.asyncio.server import serve


async def handler(ws):
    path = ws.request.path
    if path.startswith("/headers"):
        await ws.send(json.dumps([[k, v] for k, v in ws.request.headers.raw_items()]))
    async for message in ws:
        await ws.send(message)


async def main(port):
    async with serve(handler, "127.0.0.1", port, max_size=16 << 20, compression=None):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    asyncio.run(main(ap.parse_args().port))
