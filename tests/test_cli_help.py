"""Every option of every ``learnafe`` command has a one-line description, and the
training options take theirs from the documentation of the configuration fields."""

from __future__ import annotations

import argparse
import re

from learnafe.cli import build_parser
from learnafe.training.config import TrainConfig


def _options_with_parsers(parser: argparse.ArgumentParser, command: str = "learnafe"):
    """``(command, flag, action, parser)`` for every option of ``parser`` and its sub-commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options_with_parsers(sub, f"{command} {name}")
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            yield command, action.option_strings[-1], action, parser


def _options(parser: argparse.ArgumentParser):
    """``(command, flag, action)`` for every option of ``parser`` and its sub-commands."""
    return ((c, flag, a) for c, flag, a, _ in _options_with_parsers(parser))


def _described(help_text: str | None) -> bool:
    """A description says something besides the default value."""
    text = re.sub(r"\(?default[^)]*\)?|\[[^]]*\]", "", help_text or "").strip(" .,;:")
    return len(text) >= 8


def test_every_option_of_every_command_has_a_description():
    found = list(_options(build_parser()))
    commands = {c for c, _, _ in found}
    assert {"learnafe train", "learnafe evaluate", "learnafe xylo qat", "learnafe search"} <= commands
    missing = [f"{c} {flag}" for c, flag, a in found if not _described(a.help)]
    assert not missing, f"options without a description: {missing}"


def test_the_check_flags_an_option_that_shows_only_its_default():
    p = argparse.ArgumentParser(prog="x")
    p.add_argument("--a", type=int, default=3, help="(default: 3)")
    p.add_argument("--b", type=int, default=3)
    p.add_argument("--c", type=int, default=3, help="[3]")
    p.add_argument("--d", type=int, default=3, help="clips per batch (default: 3)")
    assert [flag for _, flag, a in _options(p) if not _described(a.help)] == ["--a", "--b", "--c"]


def test_train_options_take_their_text_from_the_config_fields():
    train = next(a for c, flag, a in _options(build_parser()) if c == "learnafe train" and flag == "--lr-frontend")
    assert train.help.startswith(TrainConfig.help("lr_frontend"))
    flags = {a.dest: a.help for c, _, a in _options(build_parser()) if c == "learnafe train"}
    for dotted, f in TrainConfig.fields():
        assert f.metadata["help"], dotted
        assert flags[TrainConfig.flag(dotted)].startswith(f.metadata["help"]), dotted


def _expanded_helps(parser: argparse.ArgumentParser):
    """``(command, flag, help as printed)`` for every option of ``parser`` and its sub-commands."""
    return ((c, flag, owner._get_formatter()._expand_help(a)) for c, flag, a, owner in _options_with_parsers(parser))


def test_every_option_of_every_command_names_its_default_at_most_once():
    from learnafe.commands._help import DEFAULT_PHRASE

    found = list(_expanded_helps(build_parser()))
    assert {"learnafe bench", "learnafe search", "learnafe train", "learnafe spice ac"} <= {c for c, _, _ in found}
    twice = [f"{c} {flag}: {text}" for c, flag, text in found if len(DEFAULT_PHRASE.findall(text)) > 1]
    assert not twice, f"options whose help names the default twice: {twice}"
    assert all(_described(text) for _, _, text in found)
    helps = {(c, flag): text for c, flag, text in found}
    # the help text that names the default keeps its own phrase; one that does not gets it
    assert helps["learnafe bench", "--only"] == "run only these sections (default: all; see --list)"
    assert helps["learnafe search", "--budget"] == "total number of trials (default: the config's)"
    assert helps["learnafe bench", "--seed"].endswith("(default: 0)")


def test_the_formatter_appends_a_default_only_where_the_help_lacks_one():
    from learnafe.commands._help import HelpFormatter

    p = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
    p.add_argument("--a", type=int, default=3, help="clips per batch")
    p.add_argument("--b", type=int, default=3, help="clips per batch (default: 3)")
    p.add_argument("--c", type=int, default=3, help="clips per batch [3]")
    p.add_argument("--d", default=None, help="output file (default: next to the run)")
    p.add_argument("--e", action="store_true", help="list and exit")
    helps = {a.dest: p._get_formatter()._expand_help(a) for a in p._actions if a.dest != "help"}
    assert helps == {"a": "clips per batch (default: 3)", "b": "clips per batch (default: 3)",
                     "c": "clips per batch [3]", "d": "output file (default: next to the run)",
                     "e": "list and exit"}
