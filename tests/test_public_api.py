"""The top-level package offers the public names lazily: importing it (and starting the CLI)
does not import torch, and each name resolves to the object its module defines."""

import subprocess
import sys

import pytest

import learnafe
from env_helpers import package_env


def _run(code: str) -> str:
    env = package_env()
    return subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.parametrize("code", [
    "import learnafe",
    "import learnafe.spice",
    "from learnafe.cli import build_parser; build_parser()",
])
def test_import_does_not_load_torch(code):
    assert _run(f"import sys; {code}; print('torch' in sys.modules)") == "False"


def test_public_names_resolve_to_their_modules():
    from learnafe import frontends, ops
    from learnafe.data import KeywordDataset
    from learnafe.models import DSCNN
    from learnafe.training import load_run, train

    assert learnafe.AnalogFilterBank is frontends.AnalogFilterBank
    assert learnafe.DigitalFilterBank is frontends.DigitalFilterBank
    assert learnafe.FrontEnd is frontends.FrontEnd
    assert learnafe.biquad_filterbank is ops.biquad_filterbank
    assert learnafe.filterbank_envelope is ops.filterbank_envelope
    assert learnafe.KeywordDataset is KeywordDataset and learnafe.DSCNN is DSCNN
    assert learnafe.train is train and learnafe.load_run is load_run
    for name in learnafe.__all__:
        assert getattr(learnafe, name) is not None
    assert set(learnafe.__all__) <= set(dir(learnafe))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = learnafe.nope
