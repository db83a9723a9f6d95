"""shiftbench: a benchmark suite for distribution shift in image classification.

`shiftbench.evaluate(model, methods=[...], benchmark="digits")` evaluates a model from Python
(see shiftbench/api/); it is imported on first use, so `import shiftbench` stays light.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "evaluate":
        from .api import evaluate

        return evaluate
    raise AttributeError(f"module 'shiftbench' has no attribute '{name}'")


def __dir__():
    return sorted([*globals(), "evaluate"])
