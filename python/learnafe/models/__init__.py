"""Classifiers that read the front end's ``[B, C, F]`` feature map."""

from learnafe.models.dscnn import DSCNN

__all__ = ["DSCNN"]
