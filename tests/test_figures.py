"""Figures drawn from what the runs logged: a run that logged no KL (a verl run) gets a panel that says so."""

from __future__ import annotations

import pytest
from engine_fixtures import merged_config

from prefix_opd import figures
from prefix_opd.checkpointing import KL_COLUMNS
from prefix_opd.data import write_csv


@pytest.mark.parametrize("name", ["fig2", "fig5"])
def test_a_run_without_logged_kl_gets_a_panel_saying_so(name, tmp_path, monkeypatch):
    config = merged_config()
    spec = figures.spec(name, config)
    monkeypatch.chdir(tmp_path)
    kl_files = figures.inputs(name, spec)
    assert kl_files and all(p.endswith("/kl_by_position.csv") for p in kl_files)
    for path in kl_files:
        write_csv(path, [], KL_COLUMNS)  # what a verl run publishes: the header only
    notes: list[str] = []
    draw = figures._no_data
    monkeypatch.setattr(figures, "_no_data", lambda ax, what: (notes.append(what), draw(ax, what)))
    figures.draw(name, spec, str(tmp_path / f"{name}.png"))
    assert (tmp_path / f"{name}.png").stat().st_size > 0
    assert len(notes) == len(kl_files), notes
    assert all("logged no" in n and "a verl run logs none" in n for n in notes), notes
