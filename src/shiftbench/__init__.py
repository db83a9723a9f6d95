"""shiftbench: a benchmark suite for distribution shift in image classification."""

__version__ = "0.1.0"
