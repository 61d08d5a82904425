"""The reference ladder: the committed env/ladder.yaml rates exactly the opponents the code
defines, and `tuner ladder` writes such a file from real games."""

from __future__ import annotations

import math
from itertools import combinations

import pytest
import yaml
from support import run_cli

from tuner.base.errors import UserError
from tuner.strength.ladder import ANCHOR, LADDER, LADDER_FILE, load_ladder


def test_the_committed_ladder_rates_the_opponents_the_code_defines():
    doc = yaml.safe_load(LADDER_FILE.read_text())
    ladder = load_ladder()
    assert tuple(ladder.names) == LADDER
    assert doc["command"].startswith("tuner ladder --games ")
    games = doc["games_per_pairing"]
    assert games >= 100 and games % 2 == 0
    played = {(p["first"], p["second"]) for p in doc["pairings"]}
    assert played == {(b, a) for a, b in combinations(LADDER, 2)}
    assert all(p["games"] == games for p in doc["pairings"])
    for m in doc["members"]:
        assert m["games"] == games * (len(LADDER) - 1)
        assert math.isfinite(m["low"]) and m["low"] <= m["rating"] <= m["high"]
    anchor = doc["members"][LADDER.index(ANCHOR)]
    assert anchor["rating"] == anchor["low"] == anchor["high"] == 0.0
    # The ends of the ladder are far apart: the scale spans weak and strong agents.
    assert ladder.ratings[-1] - ladder.ratings[0] > 800
    assert ladder.ratings[LADDER.index("greedy")] > 200


def test_a_stale_ladder_file_is_a_clear_error(tmp_path):
    doc = yaml.safe_load(LADDER_FILE.read_text())
    doc["members"] = doc["members"][:-1]  # minimax:6 missing
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match=r"expected the members .* run `tuner ladder`"):
        load_ladder(path)


def test_tuner_ladder_plays_the_round_robin_and_writes_the_file(tmp_path, runs):
    out = tmp_path / "ladder.yaml"
    result = run_cli("ladder", "--games", "2", "--out", str(out), runs_path=runs)
    assert result.returncode == 0, result.stderr
    ladder = load_ladder(out)
    assert tuple(ladder.names) == LADDER
    doc = yaml.safe_load(out.read_text())
    assert doc["command"] == "tuner ladder --games 2 --seed 0 --opening-plies 4"
    assert len(doc["pairings"]) == len(LADDER) * (len(LADDER) - 1) // 2
    bad = run_cli("ladder", "--games", "3", "--out", str(out), runs_path=runs)
    assert bad.returncode == 2 and "expected an even number" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
