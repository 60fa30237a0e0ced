"""pytest configuration for the pytest-benchmark files in bench/ and the environment their JSON records.

``pytest bench/`` collects ``bench_*.py`` here (as well as ``test_*.py``), so
benchmark files do not mix with the test suite in tests/.  The same
measurements with ratios against the baselines, in one run, are printed by
``learnafe bench``.
"""

from __future__ import annotations

import pytest


def pytest_collect_file(file_path, parent):
    # Files named on the command line are collected by pytest itself.
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record where the benchmarks ran (ISA path, CPU, threads, load, torch, compiler) in the JSON."""
    from learnafe.benchmarks._environment import run_environment

    machine_info["learnafe"] = run_environment()
