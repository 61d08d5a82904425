"""The reference ladder: the committed env/ladder.yaml rates exactly the opponents the code
defines, and `tuner ladder` writes such a file from real games."""

from __future__ import annotations

import math
from itertools import combinations

import pytest
import yaml
from support import run_cli

from tuner.base.errors import UserError
from tuner.strength.ladder import ANCHOR, LADDER, LADDER_FILE, load_ladder, write_ladder


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
    with pytest.raises(UserError, match=r"expected the members .* run `tuner ladder --force`"):
        load_ladder(path)


@pytest.mark.slow
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


# --- hardening, third round (issue 25): the ladder file is not trusted blindly -----------


def _member(doc: dict, name: str) -> dict:
    return next(m for m in doc["members"] if m["name"] == name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: _member(d, "minimax:2").update(ms_per_move=float("nan")), "ms_per_move > 0"),
        (lambda d: _member(d, "greedy").update(ms_per_move=-1.0), "ms_per_move > 0"),
        (lambda d: _member(d, "minimax:3").update(rating=float("nan")), "all finite"),
        (
            lambda d: _member(d, "minimax:6").update(rating=math.inf, high=math.inf),
            "all finite",
        ),
        (lambda d: _member(d, "greedy").update(rating=2000.0, high=2100.0), "in the members'"),
        (lambda d: _member(d, "minimax:1").update(low=700.0), "inside its interval"),
        (lambda d: _member(d, "random").update(rating=5.0, high=5.0), "anchor random rated 0"),
        (lambda d: d.update(stones=0), "expected stones 1..12"),
        (lambda d: d.update(opening_plies=500), "expected opening_plies 0..20"),
        (lambda d: d.update(stones=4.5), "not a ladder file"),
        (lambda d: d.update(members="none"), "not a ladder file"),
    ],
    ids=[
        "nan-timing", "negative-timing", "nan-rating", "infinite-rating", "order",
        "interval", "anchor", "stones", "plies", "float-stones", "members",
    ],
)  # fmt: skip
def test_a_damaged_ladder_file_is_one_line_naming_the_fix(tmp_path, change, message):
    doc = yaml.safe_load(LADDER_FILE.read_text())
    change(doc)
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match=message) as err:
        load_ladder(path)
    assert "`tuner ladder --force`" in str(err.value) and "\n" not in str(err.value)


def test_a_ladder_file_replaced_by_a_directory_is_one_line(tmp_path):
    (tmp_path / "ladder.yaml").mkdir()
    with pytest.raises(UserError, match="expected a readable ladder file"):
        load_ladder(tmp_path / "ladder.yaml")


def test_a_round_robin_that_gives_no_usable_ladder_is_not_written(tmp_path):
    """write_ladder checks what it writes as load_ladder reads it: out of order, nothing
    written, the old file kept, and no temporary file left beside it."""
    doc = yaml.safe_load(LADDER_FILE.read_text())
    path = tmp_path / "ladder.yaml"
    write_ladder(doc, path)
    assert load_ladder(path).ratings.tolist() == load_ladder().ratings.tolist()
    before = path.read_bytes()
    _member(doc, "minimax:6").update(rating=10.0, low=0.0, high=20.0)
    with pytest.raises(UserError, match=r"no usable ladder .* nothing was written"):
        write_ladder(doc, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ladder.yaml"]
