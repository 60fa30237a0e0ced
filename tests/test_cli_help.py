"""Every option of every ``learnafe`` command has a one-line description, and the
training options take theirs from the documentation of the configuration fields."""

from __future__ import annotations

import argparse
import re

from learnafe.cli import build_parser
from learnafe.training.config import TrainConfig


def _options(parser: argparse.ArgumentParser, command: str = "learnafe"):
    """``(command, flag, action)`` for every option of ``parser`` and its sub-commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{command} {name}")
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            yield command, action.option_strings[-1], action


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
