"""``tuner solve``: exact values of positions given as JSON lines.

Each input line is an object with ``board`` (14 integers, the absolute layout:
pits 0-5 and store 6 of player 0, pits 7-12 and store 13 of player 1) and
``to_move`` (0 or 1); every other key is kept. Each output line is the input
object with ``value`` (the final store difference from the mover's view, with
perfect play from here) and ``move_values`` (one per pit of the mover, in sowing
order: that move's exact value, ``null`` for an empty pit).

Why every line is read and checked before any is solved: a bad line 4,000 lines
down should stop the command at once with its line number, not after an hour.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from env.solver import DEFAULT_TABLE_BITS, check_position, solve_groups
from tuner.base.errors import UserError

# Positions per task sent to a worker: large enough to share its table, small
# enough to keep both workers busy and the progress line moving.
GROUP = 16


def read_positions(lines: Iterable[str], source: str) -> list[dict[str, Any]]:
    """The JSON objects of ``lines`` (blank lines skipped), each checked; UserError names the line."""
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(
                f"{source}, line {number}: expected a JSON object, but got {line.strip()[:60]!r} ({err.msg})"
            ) from None
        if not isinstance(row, dict) or "board" not in row or "to_move" not in row:
            raise UserError(
                f"{source}, line {number}: expected an object with 'board' and 'to_move', "
                f"but got {line.strip()[:60]!r}"
            )
        try:
            check_position(row["board"], row["to_move"])
        except ValueError as err:
            raise UserError(f"{source}, line {number}: {err}") from None
        rows.append(row)
    return rows


def solve_lines(
    rows: list[dict[str, Any]],
    out: TextIO,
    *,
    jobs: int = 1,
    empty_capture: bool = False,
    table_bits: int = DEFAULT_TABLE_BITS,
    progress: TextIO | None = sys.stderr,
) -> int:
    """Write each row with its ``value`` and ``move_values``, in input order; return the count."""
    groups = [rows[i : i + GROUP] for i in range(0, len(rows), GROUP)]
    plain = [[(r["board"], r["to_move"]) for r in g] for g in groups]
    began, done = time.monotonic(), 0
    solved = solve_groups(plain, empty_capture=empty_capture, jobs=jobs, table_bits=table_bits)
    for group, results in zip(groups, solved, strict=True):
        for row, res in zip(group, results, strict=True):
            out.write(
                json.dumps({**row, "value": res.value, "move_values": list(res.move_values)}) + "\n"
            )
        out.flush()
        done += len(group)
        if progress is not None:
            elapsed = time.monotonic() - began
            print(
                f"\rsolved {done}/{len(rows)} positions in {elapsed:.0f} s",
                end="",
                file=progress,
                flush=True,
            )
    if progress is not None and rows:
        print(file=progress)
    return done
