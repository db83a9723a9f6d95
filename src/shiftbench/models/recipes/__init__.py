"""Training recipes for the source model; every module here registers its own with @register_recipe."""

from .registry import RECIPES, check_recipe, register_recipe

__all__ = ["RECIPES", "check_recipe", "register_recipe"]
