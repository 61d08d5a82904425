"""The committed solved-position set: its recipe, its coverage, and its values re-solved."""

from __future__ import annotations

import json

import numpy as np
import pytest

from env.rules import legal_pits
from env.solved_set import PHASES, SET_PATH, phase_of, read_set, seeds_left
from env.solver import Solver

META_PATH = SET_PATH.with_name("kalah64.meta.json")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return read_set(SET_PATH)


def test_the_set_is_big_covers_every_phase_and_says_how_it_was_made(rows: list[dict]) -> None:
    assert len(rows) >= 5000
    assert SET_PATH.stat().st_size < 3_000_000
    phases = {phase_of(r["board"]) for r in rows}
    assert phases == {name for name, _, _ in PHASES}
    assert len({(tuple(r["board"]), r["to_move"]) for r in rows}) == len(rows)
    meta = json.loads(META_PATH.read_text(encoding="utf-8"))
    assert meta["command"].startswith("python -m env.solved_set")
    assert meta["seed"] == 0 and meta["positions"] == len(rows)


def test_every_line_is_consistent(rows: list[dict]) -> None:
    for r in rows:
        legal = set(legal_pits(r["board"], r["to_move"]))
        assert {k for k, v in enumerate(r["move_values"]) if v is not None} == legal
        assert r["value"] == max(v for v in r["move_values"] if v is not None)


def test_a_sample_re_solved_gives_the_same_values(rows: list[dict]) -> None:
    """A fresh solver agrees on 40 positions drawn from the cheaper phases (all but the opening)."""
    rng = np.random.default_rng(0)
    cheap = [r for r in rows if seeds_left(r["board"]) <= 30]
    solver = Solver(table_bits=20)
    for i in rng.choice(len(cheap), size=40, replace=False):
        r = cheap[int(i)]
        solved = solver.solve_one(r["board"], r["to_move"])
        assert solved.value == r["value"]
        assert list(solved.move_values) == r["move_values"]
