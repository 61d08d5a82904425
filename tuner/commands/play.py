"""``tuner play MODEL.zip``: a person plays Kalah against a saved agent in the terminal.

Why: a rating says how strong an agent is; a game against it shows how it plays.
The board is drawn after every move with the person's pits along the bottom,
every pit numbered in its side's sowing order and both stores named; the legal pits
are offered by number (1..6, the person's left to right), and every move of the
agent is announced by the number drawn above its pit, extra turns included.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from env.opponents import Opponent
from env.options import DEFAULT_STONES
from env.rules import N_PITS, apply_move, initial_board, legal_pits, pit_index, store_of, winner


def draw(board: list[int], human: int) -> str:
    """The board from the person's side, every pit numbered and both stores named::

                      6   5   4   3   2   1
               AI:  [ 4][ 4][ 4][ 4][ 4][ 4]
        AI store [ 0]                        [ 0] your store
              you:  [ 4][ 4][ 4][ 4][ 4][ 4]
                      1   2   3   4   5   6

    Each side's pits are numbered in its own sowing order (counter-clockwise): the
    person's left to right, the AI's right to left along the top, so that "AI plays
    pit 3" is the pit under the 3.
    """
    ai = 1 - human
    pits = {s: [board[pit_index(s, k)] for k in range(N_PITS)] for s in (human, ai)}
    indent = " " * len("AI store [ 0]")
    return (
        indent + "".join(f"  {k + 1} " for k in reversed(range(N_PITS))).rstrip() + "\n"
        + f"{'AI:':>{len(indent) - 1}} " + "".join(f"[{n:2d}]" for n in reversed(pits[ai])) + "\n"
        + f"AI store [{board[store_of(ai)]:2d}]" + " " * (4 * N_PITS)
        + f"[{board[store_of(human)]:2d}] your store\n"
        + f"{'you:':>{len(indent) - 1}} " + "".join(f"[{n:2d}]" for n in pits[human]) + "\n"
        + indent + "".join(f"  {k + 1} " for k in range(N_PITS)).rstrip() + "\n"
    )  # fmt: skip


def _move_number(answer: str) -> int | None:
    """A typed pit number (any script's decimal digits, as ``int`` reads them), else None:
    ``"²"`` is a digit that ``int`` refuses, and a number of thousands of digits too."""
    if not answer.isdecimal() or len(answer) > 3:
        return None
    return int(answer)


def play(
    agent: Opponent,
    *,
    human_seat: int = 0,
    stones: int = DEFAULT_STONES,
    ask: Callable[[str], str] = input,
    say: Callable[[str], None] = print,
    rng: np.random.Generator | None = None,
) -> int | None:
    """Play one game; return the winner's seat (``None`` for a draw).

    ``ask`` reads the person's move (``q`` resigns); ``say`` prints.
    """
    rng = rng or np.random.default_rng()
    board, to_move, over = initial_board(stones), 0, False
    say(f"You play seat {human_seat} ({'first' if human_seat == 0 else 'second'}).")
    say(draw(board, human_seat))
    while not over:
        legal = legal_pits(board, to_move)
        if to_move == human_seat:
            choices = [k + 1 for k in legal]
            try:
                answer = ask(f"your move {choices} (q to resign): ").strip().lower()
            except UnicodeDecodeError:  # bytes that are not text: asked again
                answer = "(undecodable input)"
            if answer in ("q", "quit", "resign"):
                say("You resign.")
                return 1 - human_seat
            number = _move_number(answer)
            if number not in choices:
                say(f"expected one of {choices}, but got {answer[:20]!r}")
                continue
            pit = number - 1
        else:
            boards = np.asarray([board], dtype=np.int32)
            pit = int(agent.act(boards, np.array([to_move], dtype=np.int64), rng)[0])
            say(f"AI plays pit {pit + 1}.")
        board, nxt, over = apply_move(board, to_move, pit)
        if nxt == to_move and not over:
            say("Extra turn.")
        to_move = nxt
        say(draw(board, human_seat))
    w = winner(board)
    you, ai = board[store_of(human_seat)], board[store_of(1 - human_seat)]
    say(
        f"Game over, {you}:{ai}: "
        + ("a draw." if w is None else "you win!" if w == human_seat else "the AI wins.")
    )
    return w
