"""The Python API for notebooks (the top floor: it uses the run, the leaderboard and the models)."""

from .evaluate_model import evaluate
from .user_model import save_user_model

__all__ = ["evaluate", "save_user_model"]
