"""The bank spec (learnafe-bank/1) is read and written in one place, and the JSON writer is atomic."""

import json
import os

import pytest
import torch

from learnafe._jsonio import append_json_line, read_json, write_json
from learnafe.frontends import AnalogFilterBank, BankSpec
from learnafe.frontends.spec import SPEC_FORMAT
from learnafe.spice.netlist import channels_of, load_spec
from learnafe.training.rundir import write_json as write_run_json
from learnafe.xylo.deploy import read_bank_spec


def _trained_bank():
    bank = AnalogFilterBank.conventional(n_channels=6, noise={"mode": "train"},
                                         mismatch={"mode": "fixed", "sigma_i": 0.01, "sigma_c": 0.02, "seed": 4})
    with torch.no_grad():
        bank.phi_I1.copy_(torch.linspace(-0.4, 0.4, 6, dtype=torch.float64))
        bank.phi_C2.copy_(torch.linspace(0.3, -0.3, 6, dtype=torch.float64))
    return bank


def test_run_bank_json_round_trips_byte_for_byte(tmp_path):
    bank = _trained_bank()
    path = tmp_path / "bank.json"
    write_run_json(path, bank.to_dict())  # how the trainer writes RUN/bank.json
    spec = BankSpec.load(path)
    again = tmp_path / "again.json"
    spec.save(again)
    assert again.read_bytes() == path.read_bytes()
    assert spec.to_dict() == json.loads(path.read_text())
    assert spec.n_channels == 6 and spec.sample_rate == bank.sample_rate
    assert spec.values("I1") == [ch["I1"] for ch in bank.to_dict()["channels"]]
    # the typed sections are the bank's own
    assert spec.noise == bank.noise and spec.mismatch == bank.mismatch and spec.features == bank.features
    # and the bank it describes filters exactly like the original
    x = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    rebuilt = AnalogFilterBank.from_dict(spec).eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(x), bank.eval()(x))
    assert rebuilt.to_dict() == bank.to_dict()


def test_every_reader_uses_the_same_checks(tmp_path):
    good = {"I1": 1e-10, "I2": 1e-9, "C1": 1e-12, "C2": 1e-12}
    bad_unit = {"format": SPEC_FORMAT, "channels": [good, dict(good, C1=1.0)]}
    for read in (BankSpec.from_dict, AnalogFilterBank.from_dict, channels_of):
        with pytest.raises(ValueError, match=r"spec\['channels'\]\[1\]\['C1'\] = 1 F is outside the physical range"):
            read(bad_unit)
    with pytest.raises(ValueError, match="bank spec must have format 'learnafe-bank/1', got 'other'"):
        BankSpec.from_dict({"format": "other", "channels": [good]})
    with pytest.raises(ValueError, match="must have format"):
        AnalogFilterBank.from_dict({"channels": [good]})  # a bank file must say what it is
    assert len(channels_of({"channels": [good]})) == 1    # the SPICE tools take hand-written specs
    with pytest.raises(ValueError, match=r"spec\['channels'\]\[0\] lacks 'q'"):
        BankSpec.from_dict({"format": SPEC_FORMAT, "channels": [dict(good, f0_hz=1000.0)]},
                           required=("f0_hz", "q"))
    with pytest.raises(ValueError, match="phi.I2 must have 1 values"):
        BankSpec.from_dict({"format": SPEC_FORMAT, "channels": [good], "reference": {k: [1.0] for k in good},
                            "phi": {"I1": [0.0], "I2": [0.0, 0.0], "C1": [0.0], "C2": [0.0]}})
    with pytest.raises(ValueError, match="discretization"):
        BankSpec.from_dict({"format": SPEC_FORMAT, "channels": [good], "discretization": "euler"})
    with pytest.raises(ValueError, match="unknown noise keys"):
        BankSpec.from_dict({"format": SPEC_FORMAT, "channels": [good], "noise": {"mod": "off"}})


def test_spec_is_parsed_once_and_passed_on(tmp_path):
    path = tmp_path / "bank.json"
    _trained_bank().save(path)
    spec = load_spec(path)
    assert load_spec(spec) is spec and BankSpec.from_dict(spec) is spec
    assert [c.I1 for c in channels_of(spec)] == spec.values("I1")
    deployed = read_bank_spec(path)
    assert deployed.values("f0_hz") == spec.values("f0_hz")


def test_write_json_is_atomic_and_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "sub" / "x.json"
    write_json(path, {"a": 1})
    assert read_json(path) == {"a": 1} and path.read_text() == '{\n  "a": 1\n}\n'
    with pytest.raises(ValueError):
        write_json(path, {"a": float("nan")}, allow_nan=False)
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})
    assert read_json(path) == {"a": 1}
    assert os.listdir(path.parent) == ["x.json"]  # no temporary file left behind
    write_json(path, [1, 2], indent=1, newline=False)
    assert path.read_text() == "[\n 1,\n 2\n]"


def test_append_json_line_appends_whole_records(tmp_path):
    path = tmp_path / "journal.jsonl"
    append_json_line(path, {"b": 2, "a": 1})
    append_json_line(path, {"c": 3})
    assert path.read_text().splitlines() == ['{"a": 1, "b": 2}', '{"c": 3}']
    with pytest.raises(ValueError):
        append_json_line(path, {"x": float("inf")})
    assert len(path.read_text().splitlines()) == 2
