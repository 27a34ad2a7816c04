"""Fine-tuners on cached CLIP features, one file per method, registered by name (``base.register``).

Adding a method is one new file here (and its import below, or an import of the file before the run).
"""
from .base import METHODS, FeatureMethod, FitInputs, Scorer, method_nodes, register, resolve, trainer_names
from . import clip_adapter, cocoop, coop, kgcoop, prograd, tip_adapter, zeroshot_clip  # noqa: F401,E402  built-in methods

__all__ = ["METHODS", "FeatureMethod", "FitInputs", "Scorer", "method_nodes", "register", "resolve", "trainer_names"]
