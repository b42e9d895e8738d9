"""WebSocket client (python `websockets`) for the interop scenario: connects to URL (the proxy),
offers subprotocols and permessage-deflate, checks a series of echoes, closes with code 4000,
and prints one JSON line describing what was negotiated. Any failed check raises (exit != 0).
"""

import asyncio
import json
import os
import sys

from websockets.asyncio.client import connect


async def main(url):
    report = {}
    async with connect(
        url, subprotocols=["chat", "superchat"], max_size=None, compression="deflate"
    ) as ws:
        report["subprotocol"] = ws.subprotocol
        report["extensions"] = [e.name for e in ws.protocol.extensions]

        await ws.send("hello ✓")
        assert await ws.recv() == "hello ✓", "text echo"

        data = os.urandom(1 << 20)
        await ws.send(data)
        assert await ws.recv() == data, "1 MiB binary echo"

        text = "compressible text " * 60000
        await ws.send(text)
        assert await ws.recv() == text, "1 MiB compressible text echo"

        await ws.send(["frag", "ment", "ed"])
        assert await ws.recv() == "fragmented", "fragmented echo"

        pong = await ws.ping(b"py-ping")
        await asyncio.wait_for(pong, 10)

        await ws.close(code=4000, reason="py bye")
        report["close_code"] = ws.close_code
        report["close_reason"] = ws.close_reason
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
