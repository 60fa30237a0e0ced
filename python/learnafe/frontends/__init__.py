"""Front ends: the learnable analog DSSF bank, the fixed digital bank, feature config and plots."""

from learnafe.frontends.analog import AnalogFilterBank, Bounds, MismatchConfig, NoiseConfig
from learnafe.frontends.digital import DigitalFilterBank
from learnafe.frontends.features import FeatureConfig

__all__ = ["AnalogFilterBank", "Bounds", "MismatchConfig", "NoiseConfig", "DigitalFilterBank", "FeatureConfig"]
