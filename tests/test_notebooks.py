"""The planners' notebooks run top to bottom on the bundled data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_the_planners_notebooks_are_there() -> None:
    # Without this, a missing folder would only show as a skipped parametrization.
    assert {p.name for p in NOTEBOOKS} >= {"coverage.ipynb", "planning.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_code_runs(path: Path, cache_dir: Path) -> None:
    nb = json.loads(path.read_text())
    namespace: dict[str, object] = {}
    ran = 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{path.name}", "exec"), namespace)
            ran += 1
    assert ran > 0  # any exception above fails the test: the notebook must run as shipped
