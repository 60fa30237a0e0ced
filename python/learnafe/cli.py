"""The ``learnafe`` command line.

Every module in :mod:`learnafe.commands` contributes sub-commands through a
``register(subparsers)`` function.  Registration must stay cheap (argparse
only): heavy imports happen inside the command handlers.  A handler is set with
``parser.set_defaults(func=handler)`` and returns an exit code (or None for 0).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from learnafe import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learnafe",
        description="Circuit-algorithm co-design of learnable audio front ends.",
    )
    parser.add_argument("--version", action="version", version=f"learnafe {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        # User-facing errors carry their own explanation; no traceback noise.
        if args.verbose:
            raise
        print(f"learnafe {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
