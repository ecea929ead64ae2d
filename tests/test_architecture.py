"""The layers of the code, as pyproject.toml declares them for import-linter (run by `make test`)."""

from __future__ import annotations

import pkgutil
import tomllib

import pairs_project
from tests.processes import ROOT


def layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    return contract["layers"]


def test_every_module_of_the_projects_top_is_in_the_top_layer():
    """A module added to pairs_project and left out of the contract would escape it."""
    top = {name.strip() for name in layers()[0].split(":")}
    modules = {f"pairs_project.{m.name}" for m in pkgutil.iter_modules(pairs_project.__path__)}
    assert top == modules - {"pairs_project.common"}


def test_the_apps_are_layered_in_the_order_data_flows():
    assert layers()[1:] == ["dashboard", "alerts", "analytics", "ingestion", "pairs_project.common"]
