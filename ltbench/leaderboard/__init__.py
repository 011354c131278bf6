"""Leaderboards, regenerated from result files and ``leaderboards/reported.csv`` alone.

Same inputs ⇒ byte-identical outputs. ``model`` turns results into a board (one entry per dataset × row ×
backbone × setting, statistics over seeds, paired differences to CE); ``views`` makes format-neutral tables of
it; ``paper_tables`` lays out the paper's tables from ``leaderboards/paper-tables.yaml``; ``markdown``,
``html`` and ``machine`` (csv / json / latex) render; ``write`` puts the files on disk. Figures are drawn by
``ltbench.plots`` from the same board and passed in as the list the pages link to; neither imports the other.
"""

from ltbench.leaderboard.markdown import MARKER, README_END, README_START
from ltbench.leaderboard.model import (
    BASELINE_ROW,
    COLUMNS,
    EXTRA,
    Board,
    Entry,
    Setting,
    Table,
    build_board,
    load_board,
    load_run,
)
from ltbench.leaderboard.paper_spec import load_spec
from ltbench.leaderboard.paper_tables import paper_tables
from ltbench.leaderboard.reported import (
    REPORTED_COLUMNS,
    default_reported,
    primary_reported,
    read_reported,
    resolve_reported,
)
from ltbench.leaderboard.views import compact_table, dataset_table
from ltbench.leaderboard.write import FORMATS, write_board, write_leaderboards

__all__ = [
    "BASELINE_ROW",
    "COLUMNS",
    "EXTRA",
    "FORMATS",
    "MARKER",
    "README_END",
    "README_START",
    "REPORTED_COLUMNS",
    "Board",
    "Entry",
    "Setting",
    "Table",
    "build_board",
    "compact_table",
    "dataset_table",
    "default_reported",
    "load_board",
    "load_run",
    "load_spec",
    "paper_tables",
    "primary_reported",
    "read_reported",
    "resolve_reported",
    "write_board",
    "write_leaderboards",
]
