#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that adds a fixed one-way delay in each direction (emulated link RTT).

The benchmark machine's kernel has no netem, so latency is emulated in user space: each chunk
read from one side is written to the other ``rtt/2`` seconds later, in order. Runs as its own
process so its CPU does not count against the audit being measured.

    python bench/latency_proxy.py --rtt-ms 2 --map web1=127.0.0.1:2201 --map ...
Listens on free ports it picks itself (no bind race) and prints one line once every listener is
up: "ready web1=PORT web2=PORT ..."; stops on SIGTERM/SIGINT or after --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    try:
        while data := await reader.read(65536):
            loop.call_later(delay, writer.write, data)
        await asyncio.sleep(delay)
    except (ConnectionError, OSError):
        pass
    finally:
        loop.call_later(delay, writer.close)


async def serve(listen_port: int, target: tuple[str, int], delay: float) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*target)
            await asyncio.sleep(delay)  # the SYN/SYN-ACK crossing the link
            await asyncio.gather(pipe(reader, up_w, delay), pipe(up_r, writer, delay))
        except (OSError, asyncio.CancelledError):
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", listen_port)  # 0: the kernel picks


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtt-ms", type=float, required=True)
    ap.add_argument("--map", action="append", default=[], help="NAME=HOST:PORT")
    ap.add_argument("--max-seconds", type=float, default=3600)
    args = ap.parse_args()
    delay = args.rtt_ms / 2000.0
    servers = []
    ready = []
    for item in args.map:
        name, _, target = item.partition("=")
        host, _, port = target.rpartition(":")
        server = await serve(0, (host, int(port)), delay)
        servers.append(server)
        ready.append(f"{name}={server.sockets[0].getsockname()[1]}")
    print("ready", *ready, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)
    for s in servers:
        s.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    sys.exit(0)
