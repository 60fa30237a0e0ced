"""`learnafe bench`: section discovery, CLI errors, and an end-to-end quick run of the ops section."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from learnafe import benchmarks, cli


def test_sections_are_discovered_with_the_interface():
    names = benchmarks.section_names()
    assert "ops" in names
    for name in names:
        mod = benchmarks.load_section(name)
        assert isinstance(mod.TITLE, str) and callable(mod.run) and callable(mod.format)


def test_unknown_section_is_a_clear_error(capsys):
    rc = cli.main(["bench", "--only", "nonexistent"])
    assert rc == 1
    assert "unknown benchmark section 'nonexistent'" in capsys.readouterr().err


def test_bad_threads(capsys):
    assert cli.main(["bench", "--threads", "0", "--only", "ops"]) == 1
    assert "--threads must be >= 1" in capsys.readouterr().err


def test_format_reports_targets_and_precision():
    from learnafe.benchmarks import ops as section

    fake_t = {"best_s": 0.01, "median_s": 0.011, "sample_channels_per_s": 1e9, "sample_channels": 10**7}
    result = {
        "config": {**section.QUICK, "threads": 2, "kernel_isa": "avx2", "dtype": "float32",
                   "load_average_1min": 1.0},
        "timings": {"op_forward": fake_t, "torch_loop_forward": fake_t},
        "peak_memory": {"fused": {"peak_bytes": 2**20, "method": "VmHWM"},
                        "unfused": {"peak_bytes": 2**24, "method": "VmHWM"}},
        "fused_vs_unfused_max_rel_diff": 1e-7,
        "ratios": {"forward_vs_sosfilt": 31.0},
        "targets": {"forward_vs_sosfilt": {"target": 30.0, "measured": 31.0, "met": True},
                    "fused_vs_unfused_memory": {"target": 8.0, "measured": 2.0, "met": False}},
        "float32_precision": {"x": {"sample_rate": 20000.0, "q": 3.0, "centres_hz": [100.0],
                                    "errors": {"op_f64_state_f64_coef": [4e-8]}}},
    }
    text = section.format(result)
    assert "31.00x  (target >= 30x)  met" in text
    assert "NOT met" in text
    assert "(first 400 samples)" in text
    assert "4.00e-08" in text


@pytest.mark.slow
def test_quick_ops_bench_end_to_end(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "learnafe", "-q", "bench", "--quick", "--only", "ops",
                           "--threads", "1", "--json", str(out), "--plot-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ops.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "== ops:" in proc.stdout and "targets:" in proc.stdout
    res = json.loads(out.read_text())["ops"]
    t = res["timings"]
    for name in ("op_forward", "op_forward_backward", "scipy_sosfilt_forward", "torch_loop_forward",
                 "fused_envelope_forward_backward", "unfused_envelope_forward_backward"):
        assert t[name]["best_s"] > 0 and t[name]["sample_channels_per_s"] > 0
    assert res["fused_vs_unfused_max_rel_diff"] < 1e-5
    assert t["fill_output"]["best_s"] > 0
    lim = res["memory_limit"]
    assert lim["forward_over_fill"] == t["op_forward"]["best_s"] / t["fill_output"]["best_s"]
    assert {"forward_over_fill", "forward_backward_over_fill"} <= set(res["targets"])
    assert "torchlpc" in res
    mem = res["peak_memory"]
    # the unfused path stores [B, C, T] signals: it must need more memory than the fused one
    assert mem["unfused"]["peak_bytes"] > mem["fused"]["peak_bytes"]
    prec = res["float32_precision"]["100hz_48k8"]["errors"]
    assert prec["op_f64_state_f64_coef"][0] < 1e-6 < 1e-4 < prec["df2_f32"][0]


def test_build_info_names_the_compiler_and_flags():
    from learnafe.benchmarks import _environment

    info = _environment.build_info()
    assert info["compiler_id"] and info["compiler_version"]
    assert info["compiler_version"].split(".")[0] in info["compiler_banner"]
    assert "-O3" in info["kernel_flags"]


def test_run_environment_records_where_it_ran():
    from learnafe import ops
    from learnafe.benchmarks import _environment

    env = _environment.run_environment(threads=1)
    assert env["kernel_isa"] == ops.kernel_isa()
    assert env["threads"] == 1 and env["cores_usable"] >= 1
    assert env["torch"] and env["python"] and env["cpu_model"]
    assert len(env["load_average"]) == 3
    json.dumps(env)


def test_isa_availability_follows_the_cpu_flags():
    from learnafe.benchmarks import _environment

    avx2_only = frozenset({"sse2", "avx", "avx2", "fma"})
    assert _environment.isa_available("generic", frozenset())
    assert _environment.isa_available("avx2", avx2_only)
    assert not _environment.isa_available("avx512", avx2_only)
    assert _environment.isa_available("avx512", avx2_only | {"avx512f", "avx512dq", "avx512vl", "avx512bw"})
    with pytest.raises(ValueError, match="unknown ISA path 'sse9'"):
        _environment.isa_available("sse9")


def test_bad_isa_is_a_clear_error(capsys):
    assert cli.main(["bench", "--isa", "sse9", "--only", "xylo"]) == 1
    assert "--isa must be one of generic, avx2, avx512 or 'all'" in capsys.readouterr().err


def test_isa_path_the_cpu_lacks_is_not_available(tmp_path):
    import argparse

    from learnafe.benchmarks import _isa

    args = argparse.Namespace(quick=True, threads=1, seed=0, json=None, plot_dir=None)
    run = _isa.run_path(args, "avx512", ["xylo"], flags=frozenset({"avx2", "fma"}))
    assert not run.available and run.note.startswith("not available")
    fake = {"environment": {"kernel_isa": "avx2"}, "ratios": {"speed": 3.0}}
    table = _isa.comparison([_isa.PathRun("avx2", True, {"xylo": fake}), run])
    assert table["rows"] == {"xylo.speed": {"avx2": 3.0, "avx512": None}}
    text = _isa.markdown(table)
    assert "| xylo.speed | 3 | n/a |" in text and "avx512: not available" in text
    _isa.plot(table, tmp_path / "isa.png")
    assert (tmp_path / "isa.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_isa_table_carries_the_memory_limit_and_training_rows():
    from learnafe.benchmarks import _isa, training

    ops = {"environment": {"kernel_isa": "avx2"}, "ratios": {"forward_vs_sosfilt": 30.0},
           "memory_limit": {"forward_over_fill": 2.0}}
    parts = {"fe_fwd": 0.01, "fe_bwd": 0.02, "net_fwd": 0.03, "net_bwd": 0.03, "opt": 0.01}
    rows = [{"mode": "codesign", "noise": nz, "threads": 1, "clips_per_s": 100.0 + nz,
             "parts_s": {**parts, "fe_bwd": 0.02 + 0.03 * nz}} for nz in (False, True)]
    result = {"rows": rows, "targets": training.targets(rows),
              "noise_kernels": [{"threads": 1, "ratio": 1.4}], "ddp": {"speedup": 1.8}}
    ratios = training.summary_ratios(result)
    assert ratios["fe_noise_over_fe_clean_1t"] == pytest.approx(0.06 / 0.03)
    assert ratios["fe_share_of_step_1t"] == pytest.approx(0.06 / (0.06 + 0.06 + 0.01))
    assert ratios["envelope_kernels_noise_on_over_off_1t"] == 1.4
    assert ratios["codesign_noisy_step_clips_per_s_1t"] == 101.0
    assert ratios["torchrun_2proc_over_1proc"] == 1.8
    train = {"environment": {"kernel_isa": "avx2"}, "ratios": ratios}
    table = _isa.comparison([_isa.PathRun("avx2", True, {"ops": ops, "training": train})])
    assert table["rows"]["ops.forward_over_fill"] == {"avx2": 2.0}
    assert table["rows"]["training.fe_share_of_step_1t"]["avx2"] == pytest.approx(0.06 / 0.13)


@pytest.mark.slow
def test_isa_all_runs_each_available_path_in_its_own_process(tmp_path):
    from learnafe.benchmarks import _environment

    out = tmp_path / "isa.json"
    proc = subprocess.run([sys.executable, "-m", "learnafe", "-q", "bench", "--quick", "--only", "xylo",
                           "--threads", "1", "--isa", "all", "--json", str(out), "--plot-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    table = json.loads(out.read_text())
    assert set(table["paths"]) == set(_environment.ISA_PATHS)
    for isa, info in table["paths"].items():
        assert info["available"] == _environment.isa_available(isa)
        if info["available"]:
            assert info["environment"]["kernel_isa"] == isa
            assert info["environment"]["isa_requested"] == isa
    assert out.with_suffix(".md").read_text().startswith("| measure |")
    assert (tmp_path / "isa.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_ddp_scaling_runs_one_and_two_processes():
    """The torchrun scaling row: both runs report their world size and a positive rate,
    and the speed-up is their ratio (no wall-clock threshold)."""
    from learnafe.benchmarks._ddp import format_scaling, scaling

    d = scaling(nproc=2, batch=4, steps=1, seed=0, timeout=600)
    assert d["one_process"]["world_size"] == 1 and d["torchrun"]["world_size"] == 2
    assert d["one_process"]["clips_per_s"] > 0 and d["torchrun"]["clips_per_s"] > 0
    assert d["speedup"] == pytest.approx(d["torchrun"]["clips_per_s"] / d["one_process"]["clips_per_s"])
    assert "torchrun --nproc-per-node 2" in format_scaling(d)


def test_ddp_bench_refuses_a_batch_the_processes_cannot_share():
    from learnafe.benchmarks._ddp import main, scaling

    with pytest.raises(ValueError, match="batch=3 must be a multiple of nproc=2"):
        scaling(nproc=2, batch=3)
    with pytest.raises(SystemExit, match="--batch 0 must be a positive multiple"):
        main(["--batch", "0", "--steps", "1"])
