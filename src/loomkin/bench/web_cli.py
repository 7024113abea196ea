"""The ``web`` sub-command of ``python -m loomkin.bench`` (its own module, one line to register)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loomkin.errors import UserError

if TYPE_CHECKING:
    import argparse

__all__ = ["add_web_parser", "run_web_command"]


def add_web_parser(sub: Any) -> None:
    """Add ``web`` to the sub-commands ``sub``."""
    web = sub.add_parser("web", help="the web app in headless Chromium on big sessions")
    web.add_argument("--events", type=int, default=20_000, help="events of the large session")
    web.add_argument("--small", type=int, default=1_000, help="events of the small session")
    web.add_argument(
        "--stream-s", type=float, default=10.0, help="seconds of 10 events/s live stream"
    )
    web.add_argument("--shots", type=Path, default=None, help="save screenshots in this folder")
    web.add_argument("--json", action="store_true", help="print one JSON object")


def run_web_command(args: argparse.Namespace) -> None:
    """Run ``web`` with parsed ``args``."""
    from loomkin.bench.web import run_web, web_table

    if args.stream_s <= 0:
        raise UserError(f"--stream-s must be positive, got {args.stream_s}")
    report = run_web([args.small, args.events], stream_s=args.stream_s, shots=args.shots)
    print(json.dumps(report) if args.json else web_table(report))
