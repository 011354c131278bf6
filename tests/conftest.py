"""Shared fixtures: a digits-LT build made once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("LTBENCH_NO_PROGRESS", "1")


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory):
    """A data root holding digits-lt10 and digits-lt100 (seed 0)."""
    from ltbench.builders.build import build

    from ltbench.registry import DATASETS

    root = tmp_path_factory.mktemp("data")
    spec = DATASETS.get("digits")
    build(spec, 10, root)
    build(spec, 100, root)
    return root
