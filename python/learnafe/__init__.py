"""LearnAFE: circuit-algorithm co-design of learnable audio front ends.

Data flows one way: audio -> front end (circuit model -> coefficients -> kernel
op -> features) -> classifier -> loss with hardware cost.
"""

__version__ = "0.1.0"
