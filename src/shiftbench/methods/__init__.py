"""Adaptation methods: one file, one class, registered by name."""

from .base import Method, SourceContext
from .registry import METHODS, check_method, create_method, method_classes, register_method, resolve_method

__all__ = ["METHODS", "Method", "SourceContext", "check_method", "create_method", "method_classes", "register_method",
           "resolve_method"]
