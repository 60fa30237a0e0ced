"""DSCNN classifier: parameter count, shapes, input normalisation, errors."""

import pytest
import torch

from learnafe.models import DSCNN


def _expected_params(c, k, width, depth, kt, kf):
    conv = kt * kf * width + 2 * width                      # first conv (no bias) + BN
    block = 9 * width + 2 * width + width * width + 2 * width  # dw + BN + pw + BN
    return 2 * c + conv + depth * block + width * k + k      # input BN + ... + linear


def test_default_parameter_count_is_about_22k():
    m = DSCNN()
    n = m.num_parameters()
    assert n == _expected_params(16, 12, 64, 4, 8, 4) == 22700
    assert 21_000 <= n <= 23_000
    assert "22,700 parameters" in m.summary()


@pytest.mark.parametrize("width,depth,norm", [(32, 2, "none"), (48, 3, "batch"), (64, 5, "clip")])
def test_parameter_count_formula(width, depth, norm):
    m = DSCNN(20, 12, width=width, depth=depth, input_norm=norm)
    n = _expected_params(20, 12, width, depth, 8, 4) - (40 if norm == "none" else 0)
    assert m.num_parameters() == n


def test_forward_shape_any_frame_count():
    m = DSCNN().eval()
    for frames in (7, 50, 100, 101):
        assert m(torch.randn(3, 16, frames)).shape == (3, 12)


def test_clip_norm_makes_logits_invariant_to_a_gain_offset():
    torch.manual_seed(0)
    m = DSCNN(input_norm="clip").eval()
    x = torch.randn(4, 16, 100)
    # a gain change is an additive constant in the log domain
    torch.testing.assert_close(m(x), m(x + 3.0), rtol=1e-5, atol=1e-5)
    m2 = DSCNN(input_norm="batch").eval()
    torch.testing.assert_close(m.normalise(x), m.normalise(x + 3.0), rtol=1e-5, atol=1e-5)
    assert torch.allclose(m2.normalise(x + 3.0) - m2.normalise(x), torch.tensor(3.0), atol=1e-3)


def test_bad_input_and_arguments():
    m = DSCNN()
    with pytest.raises(ValueError, match="16 channels"):
        m(torch.randn(2, 8, 100))
    with pytest.raises(ValueError, match="input_norm"):
        DSCNN(input_norm="layer")
    with pytest.raises(ValueError, match="width"):
        DSCNN(width=0)
    with pytest.raises(ValueError, match="dropout"):
        DSCNN(dropout=1.0)


def test_config_roundtrip():
    m = DSCNN(12, 10, width=40, depth=3, dropout=0.2, input_norm="batch")
    m2 = DSCNN(**m.config())
    assert m2.config() == m.config()
    assert m2.num_parameters() == m.num_parameters()
