"""Source models: architectures by name, the Classifier wrapper, trained once and cached or loaded from a checkpoint."""

from .architectures import ARCHITECTURES, build_model, register_architecture
from .classifier import Classifier
from .train import SourceModel, get_source_model

__all__ = ["ARCHITECTURES", "Classifier", "SourceModel", "build_model", "get_source_model", "register_architecture"]
