"""``tuner solve``: JSON lines in, the same lines with exact values out; bad lines exit 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from env.rules import apply_move
from env.solver import Solver
from tuner.cli import main

LATE = [0, 0, 0, 1, 2, 1, 20, 0, 1, 0, 0, 2, 3, 18]


def test_each_line_comes_back_with_its_value_and_move_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "positions.jsonl"
    lines = [{"board": LATE, "to_move": 0, "id": "a"}, {"board": LATE, "to_move": 1}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    assert main(["solve", str(path)]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["id"] for o in out[:1]] == ["a"] and len(out) == 2
    first = out[0]
    assert first["move_values"][:3] == [None, None, None]
    assert first["value"] == max(v for v in first["move_values"] if v is not None)
    # the move value of pit 5 is the rules engine's child, solved on its own
    child, nxt, over = apply_move(LATE, 0, 5)
    sign = 1 if nxt == 0 else -1
    assert first["move_values"][5] == sign * Solver(table_bits=12).value(child, nxt)
    assert out[1]["value"] == Solver(table_bits=12).value(LATE, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "stdin, line 2: expected a JSON object"),
        ('{"board": [1, 2], "to_move": 0}', "stdin, line 2: board must be a list of 14 integers"),
        ('{"board": ' + json.dumps(LATE) + ', "to_move": 3}', "line 2: to_move must be 0 or 1"),
        ('{"to_move": 0}', "line 2: expected an object with 'board' and 'to_move'"),
    ],
)
def test_a_bad_line_is_one_error_with_its_number_and_exit_2(
    text: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps({"board": LATE, "to_move": 0})
    monkeypatch.setattr("sys.stdin", io.StringIO(good + "\n" + text + "\n"))
    assert main(["solve"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err


def test_a_missing_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["solve", str(tmp_path / "nope.jsonl")]) == 2
    assert "No such file" in capsys.readouterr().err
