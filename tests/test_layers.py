"""The package's layers import only downward: config -> landing -> feeds -> experiments -> runs ->
groups -> ui -> cli (modules at the top, such as errors and settings, serve them all)."""

from __future__ import annotations

import re

from tests.conftest import ROOT

LAYERS = ["config", "landing", "feeds", "experiments", "runs", "groups", "ui", "cli"]
PACKAGE = ROOT / "pipelines" / "optimizely_courier"


def test_no_layer_imports_a_layer_above_it():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = path.relative_to(PACKAGE).parts[0]
        if layer not in LAYERS:
            continue
        for match in re.finditer(r"^\s*(?:from|import) optimizely_courier\.(\w+)", path.read_text(), re.M):
            if match.group(1) in LAYERS and LAYERS.index(match.group(1)) > LAYERS.index(layer):
                upward.append(f"{path.relative_to(PACKAGE)} imports {match.group(1)}")
    assert upward == []
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == {*LAYERS, "dev"}
