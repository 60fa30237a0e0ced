"""Progress and logging of the command line: bars only on a terminal, plain log lines in
a file (never a carriage return), ``--quiet``/``--verbose`` on every command, ``--version``."""

from __future__ import annotations

import argparse
import fcntl
import io
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from env_helpers import package_env
from learnafe import __version__, _progress
from learnafe.cli import build_parser
from training_helpers import make_toy_dataset

ROOT = Path(__file__).resolve().parents[1]


class _Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = _Clock()
    monkeypatch.setattr(_progress, "_clock", c)
    return c


def _lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "learnafe.progress"]


def test_log_progress_writes_a_line_every_tenth_and_a_closing_line(clock, caplog):
    caplog.set_level(logging.INFO, logger="learnafe.progress")
    bar = _progress.LogProgress(total=200, desc="chips", unit="chip")
    for _ in range(200):
        clock.t += 0.01
        bar.update(1)
    bar.close()
    lines = _lines(caplog)
    # 10 %, 20 %, ..., 100 %: the closing line adds nothing when the last step was logged
    assert len(lines) == 10
    assert lines[0].startswith("chips: 20/200 chip (10 %)")
    assert lines[4].startswith("chips: 100/200 chip (50 %)") and "left" in lines[4]
    assert lines[-1].startswith("chips: 200/200 chip (100 %)")
    assert not any("\r" in s or "\n" in s for s in lines)


def test_log_progress_writes_every_30_seconds_on_a_slow_job(clock, caplog):
    caplog.set_level(logging.INFO, logger="learnafe.progress")
    bar = _progress.LogProgress(total=10_000, desc="train", unit="step")
    for _ in range(100):  # 1 % in 100 steps of 1 s: only the 30 s rule applies
        clock.t += 1.0
        bar.update(1)
    bar.set_postfix(loss=0.123456, epoch=2)
    bar.close()
    lines = _lines(caplog)
    assert [s.split(",")[0] for s in lines] == ["train: 30/10000 step (0 %)", "train: 60/10000 step (1 %)",
                                               "train: 90/10000 step (1 %)", "train: 100/10000 step (1 %)"]
    assert "30.0 s elapsed" in lines[0] and "about 2 h 46 min left" in lines[0]
    assert lines[-1].endswith("in 1 min 40 s, loss=0.1235 epoch=2")


def test_inner_and_disabled_indicators_log_less(clock, caplog):
    caplog.set_level(logging.INFO, logger="learnafe.progress")
    with _progress.LogProgress(total=50, desc="eval", unit="clip", every_fraction=None) as bar:
        for _ in range(50):
            bar.update(1)
    assert _lines(caplog) == ["eval: 50/50 clip (100 %), in 0.0 s"]
    caplog.clear()
    for _ in _progress.progress(range(5), desc="x", disable=True):
        pass
    assert _lines(caplog) == []
    # iteration, a resumed start and an unknown total
    assert list(_progress.LogProgress(iter("abc"), desc="it")) == ["a", "b", "c"]
    bar = _progress.LogProgress(total=10, desc="resumed", initial=7)
    bar.update(1)  # 80 %: crosses the next tenth after the starting 70 %
    bar.close()
    bar = _progress.LogProgress(desc="open-ended", unit="trial")
    bar.update(3)
    bar.close()
    lines = _lines(caplog)
    assert lines[-2].startswith("resumed: 8/10 it (80 %), 0.0 s elapsed")
    assert lines[-1] == "open-ended: 3 trial, in 0.0 s"
    with pytest.raises(ValueError, match="total"):
        _progress.LogProgress(total=-1)


def test_progress_is_a_bar_only_on_a_terminal(monkeypatch):
    class Tty:
        def isatty(self):
            return True

        def write(self, s):
            pass

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stderr", Tty())
    from tqdm import tqdm

    bar = _progress.progress(total=3, desc="t")
    assert isinstance(bar, tqdm)
    bar.close()
    _progress.set_quiet(True)
    try:
        assert isinstance(_progress.progress(total=3), _progress.LogProgress)
    finally:
        _progress.set_quiet(False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(_progress.progress(total=3), _progress.LogProgress)


def _leaf_parsers(parser, name="learnafe"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield f"{name} {sub_name}", sub
                yield from _leaf_parsers(sub, f"{name} {sub_name}")


def test_every_command_takes_quiet_and_verbose():
    parser = build_parser()
    found = list(_leaf_parsers(parser))
    assert len(found) >= 20
    for name, sub in found:
        flags = {s for a in sub._actions for s in a.option_strings}
        assert {"-q", "--quiet", "-v", "--verbose"} <= flags, name
    a = parser.parse_args(["-q", "evaluate", "run"])
    assert a.quiet and not a.verbose  # given before the command, not reset by it
    a = parser.parse_args(["evaluate", "run", "--verbose"])
    assert a.verbose and not a.quiet
    a = parser.parse_args(["xylo", "qat", "run", "-q"])
    assert a.quiet


def _learnafe(*args, cwd, stderr_path=None, tty=False, timeout=240):
    env = package_env(OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "learnafe", *args]
    if tty:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal's size
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=slave, timeout=timeout)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        return proc, b"".join(chunks).decode(errors="replace")
    with open(stderr_path, "w") as err:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, timeout=timeout)
    return proc, Path(stderr_path).read_text()


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), per_word=4)


def test_a_command_logging_to_a_file_writes_lines_and_no_bar_frames(toy, tmp_path):
    proc, log = _learnafe("data", "cache", str(toy), "--cache-dir", str(tmp_path / "c1"),
                          cwd=tmp_path, stderr_path=tmp_path / "log.txt")
    assert proc.returncode == 0, log
    assert "\r" not in log
    lines = [s for s in log.splitlines() if "learnafe.progress: decoding audio:" in s]
    # three splits, each a few lines at most (every 10 % of its clips), the last at 100 %
    assert 3 <= len(lines) <= 3 * 11, log
    assert any("(100 %)" in s for s in lines)
    assert "INFO learnafe.data:" in log

    proc, log = _learnafe("data", "cache", str(toy), "--cache-dir", str(tmp_path / "c2"), "--quiet",
                          cwd=tmp_path, stderr_path=tmp_path / "quiet.txt")
    assert proc.returncode == 0, log
    assert " INFO " not in log and "decoding audio" not in log
    assert '"splits"' in proc.stdout.decode()  # the result still goes to stdout

    proc, log = _learnafe("-v", "data", "cache", str(toy), "--cache-dir", str(tmp_path / "c3"),
                          cwd=tmp_path, stderr_path=tmp_path / "verbose.txt")
    assert proc.returncode == 0 and "learnafe.progress: decoding audio:" in log


def test_log_options_set_the_logging_level():
    from learnafe.cli import configure_logging

    root = logging.getLogger()
    level = root.level
    try:
        configure_logging(verbose=True)
        assert root.level == logging.DEBUG and not _progress.is_quiet()
        configure_logging(quiet=True)
        assert root.level == logging.WARNING and _progress.is_quiet()
        configure_logging()
        assert root.level == logging.INFO and not _progress.is_quiet()
        with pytest.raises(ValueError, match="exclude each other"):
            configure_logging(verbose=True, quiet=True)
    finally:
        root.setLevel(level)
        _progress.set_quiet(False)


def test_a_command_on_a_terminal_draws_a_bar(toy, tmp_path):
    proc, out = _learnafe("data", "cache", str(toy), "--cache-dir", str(tmp_path / "c"), cwd=tmp_path, tty=True)
    assert proc.returncode == 0, out
    assert "\r" in out and "decoding audio" in out and "learnafe.progress:" not in out


def test_quiet_and_verbose_together_are_refused(tmp_path):
    proc, log = _learnafe("data", "info", str(tmp_path), "-q", "-v", cwd=tmp_path, stderr_path=tmp_path / "e.txt")
    assert proc.returncode == 2 and "--quiet and --verbose" in log


def test_version_prints_the_package_version(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "learnafe", "--version"], capture_output=True, text=True,
                          cwd=tmp_path, env=package_env())
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"learnafe {__version__}"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'\nversion = "{__version__}"\n' in pyproject
