"""zero_shot: the CLIP source entry, the zero-shot head's predictions as they are (no adaptation)."""

from ..base import Method
from ..registry import register_method


@register_method("zero_shot")
class ZeroShot(Method):
    """Predict with the zero-shot head built from class names and prompt templates; nothing adapts."""

    wrappable = True
    requires = ("clip",)

    def __init__(self):
        pass
