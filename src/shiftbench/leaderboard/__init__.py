"""The leaderboard: aggregate result files with pandas, check them, render a static site with Jinja2."""

from .aggregate import load_results, scenario_table, summary_table
from .render import build_site, load_annotated

__all__ = ["build_site", "load_annotated", "load_results", "scenario_table", "summary_table"]
