"""shiftbench: a benchmark suite for distribution shift in image classification.

`shiftbench.evaluate(model, methods=[...], benchmark="digits")` evaluates a model from Python
(see shiftbench/api/); it is imported on first use, so `import shiftbench` stays light.
"""

from .core.version import __version__


def __getattr__(name: str):
    if name == "evaluate":
        from .api import evaluate

        return evaluate
    raise AttributeError(f"module 'shiftbench' has no attribute '{name}'")


__all__ = ["__version__", "evaluate"]


def __dir__():
    return sorted([*globals(), "evaluate"])
