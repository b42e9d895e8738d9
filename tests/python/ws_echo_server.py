"""WebSocket echo server (python `websockets`) for the interop scenarios.

Prints its port on the first line of stdout, then echoes every message. It selects the
`superchat` subprotocol when a client offers it and negotiates permessage-deflate (the
library's default). It exits when stdin closes, so it never outlives the test that started it.
"""

import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except Exception:
        pass


def select_subprotocol(connection, subprotocols):
    """Pick `superchat` when offered; no subprotocol otherwise (Autobahn clients offer none)."""
    return "superchat" if "superchat" in subprotocols else None


async def main():
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    async with serve(
        echo,
        "127.0.0.1",
        0,
        max_size=None,
        select_subprotocol=select_subprotocol,
        compression="deflate",
    ) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await stdin_closed


if __name__ == "__main__":
    asyncio.run(main())
