"""The `shiftbench` command line: argument parsing (main.py) and what each command does (commands.py)."""

from .main import main

__all__ = ["main"]
