"""The unadapted source model: the baseline every other method is measured against."""

from .base import Method
from .registry import register_method


@register_method("source")
class Source(Method):
    """Predict with the source model as trained; no adaptation."""

    wrappable = True

    def __init__(self):
        pass
