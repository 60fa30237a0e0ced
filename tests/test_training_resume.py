"""Exact resume: a training process killed (SIGKILL) mid-run and started again
ends with the same metrics and weights as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from training_helpers import cli_setup

TIMING_KEYS = {"clips_per_s", "throughput_clips_per_s", "train_seconds", "train_cpu_seconds",
               "clips_per_cpu_second"}


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in TIMING_KEYS and k != "run_dir"}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj




@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    args, env = cli_setup(tmp_path, epochs=5, checkpoint_every=2, dropout=0.2, lambda_i=0.3,
                          lambda_c=0.3)
    cmd = lambda out: [sys.executable, *args, str(out)]  # noqa: E731

    ref = tmp_path / "ref"
    subprocess.run(cmd(ref), env=env, check=True, timeout=600)

    run = tmp_path / "killed"
    proc = subprocess.Popen(cmd(run), env=env)
    last = run / "checkpoints" / "last.pt"
    t0 = time.monotonic()
    while not last.is_file():
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() - t0 < 300, "no checkpoint within 300 s"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    metrics_path = run / "metrics.json"
    killed_status = json.loads(metrics_path.read_text())["status"] if metrics_path.is_file() else None
    assert killed_status != "finished", "the run finished before it was killed; the test proves nothing"
    step_at_kill = torch.load(last, weights_only=False)["step"]
    assert step_at_kill < 5 * 7

    subprocess.run(cmd(run), env=env, check=True, timeout=600)
    a = json.loads((ref / "metrics.json").read_text())
    b = json.loads(metrics_path.read_text())
    assert b["status"] == "finished" and b["steps"] == a["steps"]
    assert _strip(a) == _strip(b)
    wa = torch.load(ref / "checkpoints" / "best.pt", weights_only=False)["model"]
    wb = torch.load(run / "checkpoints" / "best.pt", weights_only=False)["model"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    log = (run / "log.txt").read_text()
    assert "resumed" in log
