"""Source architectures; every module here registers its builders with @register_architecture."""

from .registry import ARCHITECTURES, build_model, check_arch_params, register_architecture

__all__ = ["ARCHITECTURES", "build_model", "check_arch_params", "register_architecture"]
