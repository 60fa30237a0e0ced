"""Front ends: the contract (:class:`FrontEnd`), the learnable analog DSSF bank, the fixed digital bank,
the circuit spec (:class:`BankSpec`), feature config and plots."""

from learnafe.frontends.analog import (
           AnalogFilterBank,
           BankOptions,
           Bounds,
           ChipStack,
           CornerConfig,
           MismatchConfig,
           NoiseConfig,
)
from learnafe.frontends.base import FrontEnd
from learnafe.frontends.digital import DigitalFilterBank
from learnafe.frontends.features import FeatureConfig
from learnafe.frontends.spec import BankSpec, ChannelSpec

__all__ = ["AnalogFilterBank", "BankOptions", "ChipStack", "Bounds", "CornerConfig", "MismatchConfig", "NoiseConfig",
           "DigitalFilterBank", "FeatureConfig",
           "FrontEnd", "BankSpec", "ChannelSpec"]
