"""The leaderboard: aggregate result files with pandas, render a static HTML site with Jinja2."""

from .aggregate import load_results, scenario_table, summary_table
from .render import build_site

__all__ = ["build_site", "load_results", "scenario_table", "summary_table"]
