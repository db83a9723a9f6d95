"""Adaptation methods: one file, one class, registered by name."""

from .base import Method, SourceContext
from .registry import all_methods, check_method, create_method, register_method, resolve_method

__all__ = ["Method", "SourceContext", "all_methods", "check_method", "create_method", "register_method", "resolve_method"]
