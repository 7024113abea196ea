"""Serve the web app on the test scenario (a stand-in for ``loomkin serve --demo``).

Run: ``python tests/e2e/standin_server.py --port 0 --pace 0.3``; prints the URL when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "api"))

from scenario import start_scenario

from loomkin.api import serve
from loomkin.service.runtime import Loomkin


async def main(port: int, pace: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with await Loomkin.open("memory:") as loomkin:
            await start_scenario(loomkin, Path(tmp), pace_s=pace, patience=20)
            await serve(loomkin, port=port, ready=lambda url: print(url, flush=True))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pace", type=float, default=0.3)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.pace))
