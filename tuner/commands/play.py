"""``tuner play MODEL.zip``: a person plays Kalah against a saved agent in the terminal.

Why: a rating says how strong an agent is; a game against it shows how it plays.
The board is drawn after every move with the person's pits along the bottom,
the legal pits are offered by number (1..6 in the person's own sowing order,
left to right), and every move of the agent is announced, extra turns included.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from env.kalaha_env import render_board
from env.opponents import Opponent
from env.rules import N_PITS, apply_move, initial_board, legal_pits, side_of, store_of, winner


def draw(board: list[int], human: int) -> str:
    """The board from the person's side: their pits along the bottom, numbered 1..6."""
    b = board if human == 0 else board[side_of(1)] + board[side_of(0)]  # always as p0
    text = render_board(b)
    text = text.replace("p1:", "AI:").replace("p0:", "you")
    numbers = "".join(f"  {k + 1} " for k in range(N_PITS))
    return f"{text}           {numbers}\n"


def play(
    agent: Opponent,
    *,
    human_seat: int = 0,
    seeds: int = 4,
    ask: Callable[[str], str] = input,
    say: Callable[[str], None] = print,
    rng: np.random.Generator | None = None,
) -> int | None:
    """Play one game; return the winner's seat (``None`` for a draw).

    ``ask`` reads the person's move (``q`` resigns); ``say`` prints.
    """
    rng = rng or np.random.default_rng()
    board, to_move, over = initial_board(seeds), 0, False
    say(f"You play seat {human_seat} ({'first' if human_seat == 0 else 'second'}).")
    say(draw(board, human_seat))
    while not over:
        legal = legal_pits(board, to_move)
        if to_move == human_seat:
            choices = [k + 1 for k in legal]
            answer = ask(f"your move {choices} (q to resign): ").strip().lower()
            if answer in ("q", "quit", "resign"):
                say("You resign.")
                return 1 - human_seat
            if not answer.isdigit() or int(answer) not in choices:
                say(f"expected one of {choices}, but got {answer!r}")
                continue
            pit = int(answer) - 1
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
