"""The leaderboard: aggregate result files with pandas, check them, lay them out as boards, render a static site."""

from .aggregate import load_results, scenario_table, summary_table
from .render import build_site, load_annotated, load_boards

__all__ = ["build_site", "load_annotated", "load_boards", "load_results", "scenario_table", "summary_table"]
