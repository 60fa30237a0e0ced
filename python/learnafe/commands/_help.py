"""The help formatter of every ``learnafe`` command: an option's default is shown once.

An option's help gets ``(default: VALUE)`` appended unless its text already names the
default (:data:`DEFAULT_PHRASE`: "(default ...)", "; default ..." or a trailing
"[VALUE]"), the default is None (the help says what happens without the option), or the
option is a ``store_true``/``store_false`` switch.
"""

from __future__ import annotations

import argparse
import re

__all__ = ["DEFAULT_PHRASE", "HelpFormatter", "RawDescriptionHelpFormatter", "names_default"]

#: A phrase of an option's help that names its default.
DEFAULT_PHRASE = re.compile(r"\(default\b|[;,]\s*default\b|\[[^\]]*\]\s*$", re.IGNORECASE)


def names_default(help_text: str | None) -> bool:
    """True if ``help_text`` already names the option's default."""
    return bool(DEFAULT_PHRASE.search(help_text or ""))


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: VALUE)`` to an option's help where the text does not name it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
        if (not action.option_strings or flag or action.default in (None, argparse.SUPPRESS)
                or "%(default)" in help_text or names_default(help_text)):
            return help_text
        return f"{help_text} (default: %(default)s)"


class RawDescriptionHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """:class:`HelpFormatter` that keeps the description's and epilog's line breaks."""
