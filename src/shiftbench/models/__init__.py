"""Source models: architectures by name, trained once and cached by content hash."""

from .small_cnn import ARCHITECTURES, build_model
from .train import SourceModel, get_source_model

__all__ = ["ARCHITECTURES", "SourceModel", "build_model", "get_source_model"]
