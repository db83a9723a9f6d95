"""Source models: architectures by name, the Classifier wrapper, published weights by manifest, or trained once and cached."""

from .architectures import ARCHITECTURES, build_model, register_architecture
from .classifier import Classifier
from .preprocessing import Preprocessing
from .train import SourceModel, get_source_model

__all__ = ["ARCHITECTURES", "Classifier", "Preprocessing", "SourceModel", "build_model", "get_source_model",
           "register_architecture"]
