"""The ``learnafe`` command line.

Every module in :mod:`learnafe.commands` contributes sub-commands through a
``register(subparsers)`` function.  Registration must stay cheap (argparse
only): heavy imports happen inside the command handlers.  A handler is set with
``parser.set_defaults(func=handler)`` and returns an exit code (or None for 0).

``--quiet`` and ``--verbose`` belong to every command and sub-command (given before
or after the command name); they set the logging level.  Progress is drawn as a bar
only when standard error is a terminal, else logged as plain lines
(:mod:`learnafe._progress`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from learnafe import __version__, _progress, commands
from learnafe.commands._help import HelpFormatter

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _add_log_options(parser: argparse.ArgumentParser, default) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("-v", "--verbose", action="store_true", default=default,
                       help="debug logging and full tracebacks of errors")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="warnings and errors only: no progress bars or progress log lines")


class CommandParser(argparse.ArgumentParser):
    """The parser of a (sub-)command: it takes ``--quiet`` and ``--verbose`` too.

    Their default is suppressed, so a flag given before the command name is not reset
    by the sub-command's parser.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        _add_log_options(self, argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learnafe",
        description="Circuit-algorithm co-design of learnable audio front ends.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"learnafe {__version__}",
                        help="print the package version and exit")
    _add_log_options(parser, False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Log level DEBUG (``verbose``), WARNING (``quiet``) or INFO on standard error;
    ``quiet`` also switches the progress bars off."""
    if verbose and quiet:
        raise ValueError("--quiet and --verbose exclude each other; give one of them")
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format=LOG_FORMAT, datefmt="%H:%M:%S")
    root.setLevel(level)
    _progress.set_quiet(quiet)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    quiet_before = _progress.is_quiet()
    try:
        configure_logging(args.verbose, args.quiet)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        with _progress.logs_above_bars():
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
    finally:
        _progress.set_quiet(quiet_before)
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
