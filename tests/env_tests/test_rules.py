"""The rules of Kalah(6, n), one rule per test, in the style of OpenSpiel's game tests.

Every board is drawn as ASCII art in the layout of ``env.kalaha_env.render_board``:
player 1's pits along the top, right to left (p1 pit 5 .. p1 pit 0), player 1's
store on the left, player 0's store on the right, player 0's pits along the bottom,
left to right (p0 pit 0 .. p0 pit 5). Stones travel counter-clockwise: along the
bottom to the right, up into p0's store, along the top to the left, into p1's store.

::

          p1:  [12][11][10][ 9][ 8][ 7]      <- absolute indices
        [13]                              [ 6]
          p0:  [ 0][ 1][ 2][ 3][ 4][ 5]

The art in each test *is* the test data: :func:`art` reads it back into the
14-integer board, and :func:`test_art_reads_back_what_render_board_draws` checks
that the reader and ``render_board`` agree.
"""

import re

import numpy as np
import pytest

from env.kalaha_env import render_board
from env.rules import (
    apply_move,
    initial_board,
    is_over,
    legal_pits,
    opposite,
    owner,
    pit_index,
    pits_of,
    side_of,
    store_of,
    winner,
)

_CELL = re.compile(r"\[\s*(\d+)\]")


def art(text):
    """Read a board drawn in ``render_board``'s layout into the 14-integer list."""
    rows = [_CELL.findall(line) for line in text.strip().splitlines()]
    rows = [[int(x) for x in row] for row in rows if row]
    top, stores, bottom = rows
    assert len(top) == 6 and len(stores) == 2 and len(bottom) == 6, text
    board = [0] * 14
    board[0:6] = bottom
    board[6] = stores[1]
    board[7:13] = top[::-1]
    board[13] = stores[0]
    return board


def check_move(before, player, pit, after, next_player, game_over, empty_capture=False):
    """Play one move and check the exact board, the next player, the end and conservation."""
    got_board, got_next, got_over = apply_move(before, player, pit, empty_capture=empty_capture)
    assert got_board == after, (
        f"\nexpected:\n{render_board(after)}\ngot:\n{render_board(got_board)}"
    )
    assert got_next == next_player
    assert got_over is game_over
    assert sum(got_board) == sum(before), "stones are conserved"
    assert is_over(got_board) is game_over
    return got_board


# --- the drawing itself ------------------------------------------------------------


def test_art_reads_back_what_render_board_draws():
    """The art reader is the inverse of render_board, on the start and on random boards."""
    rng = np.random.default_rng(0)
    boards = [initial_board(4), list(range(14))]
    boards += [[int(x) for x in rng.integers(0, 40, size=14)] for _ in range(50)]
    for board in boards:
        assert art(render_board(board)) == board


def test_layout_puts_pit_i_opposite_pit_12_minus_i():
    """Absolute index i lies on the other row straight across from 12 - i."""
    board = art(
        """
          p1:  [12][11][10][ 9][ 8][ 7]
        [13]                              [ 6]
          p0:  [ 0][ 1][ 2][ 3][ 4][ 5]
        """
    )
    assert board == list(range(14))


def test_layout_helpers_name_the_pictured_indices():
    """The helpers every kernel and tool uses agree with the picture, index by index."""
    board = art(
        """
          p1:  [12][11][10][ 9][ 8][ 7]
        [13]                              [ 6]
          p0:  [ 0][ 1][ 2][ 3][ 4][ 5]
        """
    )
    assert [board[pit_index(0, k)] for k in range(6)] == [0, 1, 2, 3, 4, 5]
    assert [board[pit_index(1, k)] for k in range(6)] == [7, 8, 9, 10, 11, 12]
    assert (board[store_of(0)], board[store_of(1)]) == (6, 13)
    assert [opposite(i) for i in (0, 5, 7, 12)] == [12, 7, 5, 0]
    assert [owner(i) for i in (0, 5, 6, 7, 12, 13)] == [0, 0, 0, 1, 1, 1]
    assert board[side_of(0)] == [0, 1, 2, 3, 4, 5, 6]
    assert board[side_of(1)] == [7, 8, 9, 10, 11, 12, 13]
    assert board[pits_of(1)] == [7, 8, 9, 10, 11, 12]
    seats = np.array([0, 1, 1])
    assert store_of(seats).tolist() == [6, 13, 13], "numpy arrays of players work too"


# --- the start ---------------------------------------------------------------------


@pytest.mark.parametrize("stones", [3, 4, 5, 6])
def test_initial_board_has_stones_in_every_pit_and_empty_stores(stones):
    """initial_board(n): n stones in each of the twelve pits, both stores empty."""
    board = initial_board(stones)
    assert board == [stones] * 6 + [0] + [stones] * 6 + [0]
    assert sum(board) == 12 * stones
    assert legal_pits(board, 0) == legal_pits(board, 1) == [0, 1, 2, 3, 4, 5]
    assert not is_over(board)


def test_initial_board_defaults_to_four_stones():
    """Kalah(6, 4) is the default: 48 stones in all."""
    assert initial_board() == initial_board(4)
    assert sum(initial_board()) == 48


@pytest.mark.parametrize("stones", [0, -1, 13, 4.5, "4", None])
def test_initial_board_rejects_bad_stone_counts(stones):
    """A stone count that is not a whole number in range is a ValueError naming the value."""
    with pytest.raises(ValueError, match="stones"):
        initial_board(stones)


def test_initial_board_rejects_a_bool_stone_count():
    """True is not a stone count, although bool is a subclass of int."""
    with pytest.raises(ValueError, match="stones"):
        initial_board(True)


# --- rule 1: sowing ----------------------------------------------------------------


def test_plain_sowing_one_stone_per_hole_counter_clockwise():
    """Rule 1: the chosen pit is emptied and its stones go one by one into the next pits."""
    before = art(
        """
          p1:  [ 4][ 4][ 4][ 4][ 4][ 4]
        [ 0]                              [ 0]
          p0:  [ 4][ 4][ 4][ 4][ 4][ 4]
        """
    )
    # p0 plays pit 0: its 4 stones go to p0 pits 1, 2, 3, 4.
    after = art(
        """
          p1:  [ 4][ 4][ 4][ 4][ 4][ 4]
        [ 0]                              [ 0]
          p0:  [ 0][ 5][ 5][ 5][ 5][ 4]
        """
    )
    check_move(before, 0, 0, after, next_player=1, game_over=False)


def test_sowing_passes_own_store_and_goes_on_to_the_opponent_side():
    """Rule 1: sowing drops a stone in the mover's own store and carries on across."""
    before = art(
        """
          p1:  [ 4][ 4][ 4][ 4][ 4][ 4]
        [ 0]                              [ 0]
          p0:  [ 4][ 4][ 4][ 4][ 4][ 4]
        """
    )
    # p0 plays pit 4: p0 pit 5, p0's store, p1 pits 0 and 1.
    after = art(
        """
          p1:  [ 4][ 4][ 4][ 4][ 5][ 5]
        [ 0]                              [ 1]
          p0:  [ 4][ 4][ 4][ 4][ 0][ 5]
        """
    )
    check_move(before, 0, 4, after, next_player=1, game_over=False)


def test_player0_skips_the_opponents_store():
    """Rule 1: p0's stones go round past p1's store (left) without dropping one in it."""
    before = art(
        """
          p1:  [ 1][ 1][ 1][ 1][ 1][ 1]
        [ 0]                              [ 0]
          p0:  [ 2][ 1][ 1][ 1][ 1][ 8]
        """
    )
    # p0 plays pit 5 (8 stones): own store, the six p1 pits, skip p1's store, p0 pit 0.
    after = art(
        """
          p1:  [ 2][ 2][ 2][ 2][ 2][ 2]
        [ 0]                              [ 1]
          p0:  [ 3][ 1][ 1][ 1][ 1][ 0]
        """
    )
    check_move(before, 0, 5, after, next_player=1, game_over=False)


def test_player1_skips_the_opponents_store():
    """Rule 1: p1's stones go round past p0's store (right) without dropping one in it."""
    before = art(
        """
          p1:  [ 8][ 1][ 1][ 1][ 1][ 2]
        [ 0]                              [ 0]
          p0:  [ 1][ 1][ 1][ 1][ 1][ 1]
        """
    )
    # p1 plays its pit 5 (8 stones): own store, the six p0 pits, skip p0's store, p1 pit 0.
    after = art(
        """
          p1:  [ 0][ 1][ 1][ 1][ 1][ 3]
        [ 1]                              [ 0]
          p0:  [ 2][ 2][ 2][ 2][ 2][ 2]
        """
    )
    check_move(before, 1, 5, after, next_player=0, game_over=False)


def test_lap_of_thirteen_or_more_drops_a_stone_into_the_origin_pit():
    """Rule 1: a pit of 14 stones laps the board; the emptied origin pit gets a stone too."""
    before = art(
        """
          p1:  [ 1][ 1][ 1][ 1][ 1][ 1]
        [ 0]                              [ 0]
          p0:  [ 1][ 1][14][ 1][ 1][ 1]
        """
    )
    # p0 plays pit 2: pits 3, 4, 5, store, six p1 pits, (skip), pits 0, 1, the origin
    # pit 2 itself (stone 13) and pit 3 again (stone 14, the last).
    after = art(
        """
          p1:  [ 2][ 2][ 2][ 2][ 2][ 2]
        [ 0]                              [ 1]
          p0:  [ 2][ 2][ 1][ 3][ 2][ 2]
        """
    )
    check_move(before, 0, 2, after, next_player=1, game_over=False)


def test_lap_of_thirteen_ending_in_the_emptied_origin_pit_captures():
    """Rules 1 and 3: 13 stones end in the origin pit, emptied by the move, so it captures.

    The origin pit held 0 stones after being picked up, so the 13th stone lands in an
    empty own pit; the opposite pit got a stone on the way round, so it is non-empty.
    """
    before = art(
        """
          p1:  [ 2][ 1][ 1][ 1][ 1][ 1]
        [ 0]                              [ 0]
          p0:  [13][ 0][ 0][ 0][ 0][ 0]
        """
    )
    # Sowing alone gives p0 pits [1 1 1 1 1 1], store 1, p1 pits [2 2 2 2 2 3]; then the
    # last stone (p0 pit 0) and the 3 stones opposite (p1 pit 5) go to p0's store.
    after = art(
        """
          p1:  [ 0][ 2][ 2][ 2][ 2][ 2]
        [ 0]                              [ 5]
          p0:  [ 0][ 1][ 1][ 1][ 1][ 1]
        """
    )
    check_move(before, 0, 0, after, next_player=1, game_over=False)


# --- rule 2: extra turns -----------------------------------------------------------


def test_last_stone_in_own_store_gives_an_extra_turn():
    """Rule 2: p0's pit 2 (4 stones) ends in p0's store, so p0 moves again."""
    before = art(
        """
          p1:  [ 4][ 4][ 4][ 4][ 4][ 4]
        [ 0]                              [ 0]
          p0:  [ 4][ 4][ 4][ 4][ 4][ 4]
        """
    )
    after = art(
        """
          p1:  [ 4][ 4][ 4][ 4][ 4][ 4]
        [ 0]                              [ 1]
          p0:  [ 4][ 4][ 0][ 5][ 5][ 5]
        """
    )
    check_move(before, 0, 2, after, next_player=0, game_over=False)


def test_player1_last_stone_in_own_store_gives_an_extra_turn():
    """Rule 2 for p1: p1's pit 2 (4 stones) ends in p1's store (left), so p1 moves again."""
    before = art(
        """
          p1:  [ 4][ 4][ 4][ 4][ 4][ 4]
        [ 0]                              [ 0]
          p0:  [ 4][ 4][ 4][ 4][ 4][ 4]
        """
    )
    after = art(
        """
          p1:  [ 5][ 5][ 5][ 0][ 4][ 4]
        [ 1]                              [ 0]
          p0:  [ 4][ 4][ 4][ 4][ 4][ 4]
        """
    )
    check_move(before, 1, 2, after, next_player=1, game_over=False)


def test_extra_turn_chain_two_in_a_row():
    """Rule 2 twice: pit 5 (1 stone) then pit 4 (2 stones) both end in the store; then
    pit 3 (4 stones) runs past the store and the turn passes to p1."""
    board = art(
        """
          p1:  [ 1][ 1][ 1][ 1][ 1][ 1]
        [ 0]                              [ 0]
          p0:  [ 0][ 0][ 0][ 4][ 2][ 1]
        """
    )
    board = check_move(
        board,
        0,
        5,
        art(
            """
          p1:  [ 1][ 1][ 1][ 1][ 1][ 1]
        [ 0]                              [ 1]
          p0:  [ 0][ 0][ 0][ 4][ 2][ 0]
            """
        ),
        next_player=0,
        game_over=False,
    )
    board = check_move(
        board,
        0,
        4,
        art(
            """
          p1:  [ 1][ 1][ 1][ 1][ 1][ 1]
        [ 0]                              [ 2]
          p0:  [ 0][ 0][ 0][ 4][ 0][ 1]
            """
        ),
        next_player=0,
        game_over=False,
    )
    check_move(
        board,
        0,
        3,
        art(
            """
          p1:  [ 1][ 1][ 1][ 1][ 1][ 2]
        [ 0]                              [ 3]
          p0:  [ 0][ 0][ 0][ 0][ 1][ 2]
            """
        ),
        next_player=1,
        game_over=False,
    )


# --- rule 3: captures --------------------------------------------------------------


def test_capture_last_stone_in_own_empty_pit_takes_the_opposite_stones():
    """Rule 3: last stone in p0's empty pit 3, p1's pit 2 opposite holds 2: all 3 stones
    go to p0's store, and there is no extra turn."""
    before = art(
        """
          p1:  [ 2][ 2][ 2][ 2][ 2][ 2]
        [ 3]                              [ 5]
          p0:  [ 0][ 2][ 0][ 0][ 0][ 3]
        """
    )
    # p0 plays pit 1: stones to pits 2 and 3; pit 3 was empty and captures.
    after = art(
        """
          p1:  [ 2][ 2][ 2][ 0][ 2][ 2]
        [ 3]                              [ 8]
          p0:  [ 0][ 0][ 1][ 0][ 0][ 3]
        """
    )
    check_move(before, 0, 1, after, next_player=1, game_over=False)


def test_player1_capture_goes_to_player1_store():
    """Rule 3 for p1: last stone in p1's empty pit 1; p0's pit 4 opposite holds 5."""
    before = art(
        """
          p1:  [ 3][ 3][ 3][ 3][ 0][ 1]
        [ 2]                              [ 4]
          p0:  [ 3][ 3][ 3][ 3][ 5][ 3]
        """
    )
    # p1 plays its pit 0 (absolute 7): one stone into p1 pit 1 (absolute 8), empty.
    after = art(
        """
          p1:  [ 3][ 3][ 3][ 3][ 0][ 0]
        [ 8]                              [ 4]
          p0:  [ 3][ 3][ 3][ 3][ 0][ 3]
        """
    )
    check_move(before, 1, 0, after, next_player=0, game_over=False)


def test_no_capture_when_the_opposite_pit_is_empty():
    """Rule 3 (default rules): the opposite pit is empty, so the last stone just stays."""
    before = art(
        """
          p1:  [ 2][ 2][ 2][ 0][ 2][ 2]
        [ 3]                              [ 5]
          p0:  [ 0][ 2][ 0][ 0][ 0][ 3]
        """
    )
    after = art(
        """
          p1:  [ 2][ 2][ 2][ 0][ 2][ 2]
        [ 3]                              [ 5]
          p0:  [ 0][ 0][ 1][ 1][ 0][ 3]
        """
    )
    check_move(before, 0, 1, after, next_player=1, game_over=False)


def test_empty_capture_variant_captures_the_lone_stone():
    """The empty_capture variant: the lone last stone goes to the store even though the
    opposite pit is empty (same position as the test above)."""
    before = art(
        """
          p1:  [ 2][ 2][ 2][ 0][ 2][ 2]
        [ 3]                              [ 5]
          p0:  [ 0][ 2][ 0][ 0][ 0][ 3]
        """
    )
    after = art(
        """
          p1:  [ 2][ 2][ 2][ 0][ 2][ 2]
        [ 3]                              [ 6]
          p0:  [ 0][ 0][ 1][ 0][ 0][ 3]
        """
    )
    check_move(before, 0, 1, after, next_player=1, game_over=False, empty_capture=True)


def test_empty_capture_variant_still_captures_a_non_empty_opposite_pit():
    """The empty_capture variant leaves the ordinary capture as it is."""
    before = art(
        """
          p1:  [ 2][ 2][ 2][ 2][ 2][ 2]
        [ 3]                              [ 5]
          p0:  [ 0][ 2][ 0][ 0][ 0][ 3]
        """
    )
    after = art(
        """
          p1:  [ 2][ 2][ 2][ 0][ 2][ 2]
        [ 3]                              [ 8]
          p0:  [ 0][ 0][ 1][ 0][ 0][ 3]
        """
    )
    check_move(before, 0, 1, after, next_player=1, game_over=False, empty_capture=True)


@pytest.mark.parametrize("empty_capture", [False, True])
def test_no_capture_when_last_stone_lands_in_an_opponents_empty_pit(empty_capture):
    """Rule 3 is about the mover's own pits: p0's last stone in p1's empty pit 0 stays
    there, although p0's pit 5 opposite is full (with or without empty_capture)."""
    before = art(
        """
          p1:  [ 2][ 2][ 2][ 2][ 2][ 0]
        [ 0]                              [ 0]
          p0:  [ 1][ 1][ 1][ 1][ 3][ 1]
        """
    )
    # p0 plays pit 4: p0 pit 5, p0's store, p1 pit 0 (empty before).
    after = art(
        """
          p1:  [ 2][ 2][ 2][ 2][ 2][ 1]
        [ 0]                              [ 1]
          p0:  [ 1][ 1][ 1][ 1][ 0][ 2]
        """
    )
    check_move(before, 0, 4, after, next_player=1, game_over=False, empty_capture=empty_capture)


def test_no_capture_when_last_stone_lands_in_a_non_empty_own_pit():
    """Rule 3 needs the own pit to have been empty: a pit that held stones does not capture."""
    before = art(
        """
          p1:  [ 2][ 2][ 2][ 2][ 2][ 2]
        [ 0]                              [ 0]
          p0:  [ 0][ 2][ 0][ 1][ 0][ 3]
        """
    )
    after = art(
        """
          p1:  [ 2][ 2][ 2][ 2][ 2][ 2]
        [ 0]                              [ 0]
          p0:  [ 0][ 0][ 1][ 2][ 0][ 3]
        """
    )
    check_move(before, 0, 1, after, next_player=1, game_over=False)


# --- rule 4: the end and the sweep -------------------------------------------------


def test_game_ends_when_the_mover_empties_their_own_side():
    """Rule 4: p0 sows its last 2 stones (store, p1 pit 0); p0's side is empty, so the
    game ends and p1's remaining stones are swept into p1's own store."""
    before = art(
        """
          p1:  [ 0][ 0][ 0][ 3][ 2][ 1]
        [19]                              [20]
          p0:  [ 0][ 0][ 0][ 0][ 0][ 2]
        """
    )
    # After sowing p1 has pits [2 2 3 0 0 0]: 7 stones swept into p1's store.
    after = art(
        """
          p1:  [ 0][ 0][ 0][ 0][ 0][ 0]
        [26]                              [21]
          p0:  [ 0][ 0][ 0][ 0][ 0][ 0]
        """
    )
    check_move(before, 0, 5, after, next_player=1, game_over=True)
    assert winner(after) == 1


def test_game_ends_on_an_extra_turn_that_empties_the_movers_side():
    """Rule 4 beats rule 2: the last stone earns an extra turn, but p0's side is empty,
    so the game is over anyway and p1's stones go to p1's store."""
    before = art(
        """
          p1:  [ 1][ 0][ 0][ 0][ 0][ 2]
        [20]                              [24]
          p0:  [ 0][ 0][ 0][ 0][ 0][ 1]
        """
    )
    after = art(
        """
          p1:  [ 0][ 0][ 0][ 0][ 0][ 0]
        [23]                              [25]
          p0:  [ 0][ 0][ 0][ 0][ 0][ 0]
        """
    )
    check_move(before, 0, 5, after, next_player=0, game_over=True)
    assert winner(after) == 0


def test_game_ends_when_a_capture_empties_the_opponents_side():
    """Rule 4 after rule 3: p0 captures p1's only stones; p1's side is empty, so the game
    ends and p0's remaining stones are swept into p0's store."""
    before = art(
        """
          p1:  [ 0][ 0][ 4][ 0][ 0][ 0]
        [ 8]                              [10]
          p0:  [ 0][ 1][ 0][ 0][ 0][ 3]
        """
    )
    # p0 plays pit 1: one stone into empty pit 2; it and p1's 4 stones opposite go to
    # p0's store (15); then p1's side is empty and p0's pit 5 (3) is swept to p0 (18).
    after = art(
        """
          p1:  [ 0][ 0][ 0][ 0][ 0][ 0]
        [ 8]                              [18]
          p0:  [ 0][ 0][ 0][ 0][ 0][ 0]
        """
    )
    check_move(before, 0, 1, after, next_player=1, game_over=True)
    assert winner(after) == 0


def test_game_ends_when_a_capture_empties_the_movers_own_side():
    """Rule 4 after rule 3: p0's last stone captures, which takes p0's last stone off its
    own side; the game ends and p1's stones go to p1's store."""
    before = art(
        """
          p1:  [ 1][ 3][ 1][ 1][ 1][ 1]
        [10]                              [20]
          p0:  [ 1][ 0][ 0][ 0][ 0][ 0]
        """
    )
    # p0 plays pit 0: one stone into empty pit 1; it and the 3 stones in p1's pit 4
    # (opposite) go to p0's store (24). p0's side is empty: p1's 5 stones go to p1 (15).
    after = art(
        """
          p1:  [ 0][ 0][ 0][ 0][ 0][ 0]
        [15]                              [24]
          p0:  [ 0][ 0][ 0][ 0][ 0][ 0]
        """
    )
    check_move(before, 0, 0, after, next_player=1, game_over=True)
    assert winner(after) == 0


def test_sweep_sends_stones_to_the_store_of_the_side_they_lie_on():
    """Rule 4: when p1 empties its own side, p0's remaining stones go to p0's store (not
    to the mover's)."""
    before = art(
        """
          p1:  [ 0][ 0][ 0][ 0][ 1][ 0]
        [20]                              [15]
          p0:  [ 1][ 2][ 3][ 1][ 0][ 5]
        """
    )
    # p1 plays its pit 1 (absolute 8): one stone into p1 pit 2 (absolute 9), empty; the
    # opposite p0 pit 3 holds 1: both go to p1's store (22). p1's side is empty, so p0's
    # pits 1+2+3+0+0+5 = 11 stones go to p0's store (26).
    after = art(
        """
          p1:  [ 0][ 0][ 0][ 0][ 0][ 0]
        [22]                              [26]
          p0:  [ 0][ 0][ 0][ 0][ 0][ 0]
        """
    )
    check_move(before, 1, 1, after, next_player=0, game_over=True)


# --- rule 5: the result ------------------------------------------------------------


def test_draw_when_stores_are_equal():
    """Rule 5: the game ends with 24 stones in each store, a draw: winner() is None."""
    before = art(
        """
          p1:  [ 0][ 0][ 0][ 0][ 0][ 1]
        [22]                              [23]
          p0:  [ 0][ 0][ 0][ 0][ 0][ 2]
        """
    )
    after = art(
        """
          p1:  [ 0][ 0][ 0][ 0][ 0][ 0]
        [24]                              [24]
          p0:  [ 0][ 0][ 0][ 0][ 0][ 0]
        """
    )
    check_move(before, 0, 5, after, next_player=1, game_over=True)
    assert winner(after) is None


@pytest.mark.parametrize(
    ("p0_store", "p1_store", "expected"),
    [(25, 23, 0), (23, 25, 1), (24, 24, None), (0, 48, 1), (48, 0, 0)],
)
def test_winner_is_the_larger_store(p0_store, p1_store, expected):
    """Rule 5: winner() names the player with more stones in their store, None on a tie."""
    board = [0] * 6 + [p0_store] + [0] * 6 + [p1_store]
    assert winner(board) == expected


# --- player 1, legal moves and errors ----------------------------------------------


def test_player1_pits_are_absolute_7_plus_k():
    """Player 1's pit k is absolute index 7 + k: p1 pit 0 sows into p1 pits 1..4."""
    before = art(
        """
          p1:  [ 4][ 4][ 4][ 4][ 4][ 4]
        [ 0]                              [ 0]
          p0:  [ 0][ 5][ 5][ 5][ 5][ 4]
        """
    )
    after = art(
        """
          p1:  [ 4][ 5][ 5][ 5][ 5][ 0]
        [ 0]                              [ 0]
          p0:  [ 0][ 5][ 5][ 5][ 5][ 4]
        """
    )
    board = check_move(before, 1, 0, after, next_player=0, game_over=False)
    assert board[7] == 0 and board[8:12] == [5, 5, 5, 5]


def test_legal_pits_are_the_movers_non_empty_pits_in_own_order():
    """legal_pits lists the mover's own non-empty pits, numbered 0..5 from each side."""
    board = art(
        """
          p1:  [ 0][ 3][ 0][ 0][ 2][ 1]
        [ 5]                              [ 7]
          p0:  [ 4][ 0][ 6][ 0][ 0][ 9]
        """
    )
    assert legal_pits(board, 0) == [0, 2, 5]
    assert legal_pits(board, 1) == [0, 1, 4]


def test_empty_pit_is_a_value_error_naming_the_pit_and_the_legal_pits():
    """An empty pit is not a move: ValueError naming the pit and the legal pits."""
    board = art(
        """
          p1:  [ 4][ 4][ 4][ 4][ 4][ 4]
        [ 0]                              [ 1]
          p0:  [ 4][ 4][ 0][ 5][ 5][ 5]
        """
    )
    with pytest.raises(ValueError, match=r"pit 2\b.*\[0, 1, 3, 4, 5\]"):
        apply_move(board, 0, 2)


@pytest.mark.parametrize("pit", [6, -1, 13, 100])
def test_out_of_range_pit_is_a_value_error_naming_the_pit_and_the_legal_pits(pit):
    """A pit outside 0..5 (an absolute index included) is a ValueError naming both."""
    board = initial_board()
    with pytest.raises(ValueError) as excinfo:
        apply_move(board, 0, pit)
    message = str(excinfo.value)
    assert f"pit {pit}" in message
    assert "[0, 1, 2, 3, 4, 5]" in message


def test_player1_empty_pit_is_a_value_error_with_player1_legal_pits():
    """The legal pits in the message are the mover's, in the mover's own numbering."""
    board = art(
        """
          p1:  [ 1][ 0][ 0][ 2][ 0][ 0]
        [ 0]                              [ 0]
          p0:  [ 4][ 4][ 4][ 4][ 4][ 4]
        """
    )
    with pytest.raises(ValueError, match=r"pit 0\b.*\[2, 5\]"):
        apply_move(board, 1, 0)


@pytest.mark.parametrize("player", [2, -1])
def test_bad_player_is_a_value_error(player):
    """The mover is 0 or 1."""
    with pytest.raises(ValueError, match="player"):
        apply_move(initial_board(), player, 0)


# --- the API's contract ------------------------------------------------------------


def test_apply_move_does_not_mutate_a_list_board():
    """apply_move returns a new board and leaves its input as it was."""
    board = initial_board()
    snapshot = list(board)
    after, _, _ = apply_move(board, 0, 0)
    assert board == snapshot
    assert after is not board and after != board


def test_apply_move_does_not_mutate_a_numpy_board():
    """Also for an int32 array, which np.asarray would not copy by itself."""
    board = np.array(initial_board(), dtype=np.int32)
    snapshot = board.copy()
    apply_move(board, 0, 2)
    apply_move(board, 1, 3)
    np.testing.assert_array_equal(board, snapshot)


def test_apply_move_returns_plain_python_types():
    """The single-game API speaks plain Python: a list of ints, an int and a bool."""
    after, nxt, over = apply_move(initial_board(), 0, 0)
    assert type(after) is list and all(type(x) is int for x in after)
    assert type(nxt) is int and type(over) is bool


@pytest.mark.parametrize("stones", [3, 4, 5, 6])
def test_stones_are_conserved_over_a_whole_game(stones):
    """Seed conservation: every move of a game keeps the total at 12 * stones."""
    rng = np.random.default_rng(stones)
    for _ in range(20):
        board, player, over = initial_board(stones), 0, False
        while not over:
            pit = int(rng.choice(legal_pits(board, player)))
            board, player, over = apply_move(board, player, pit)
            assert sum(board) == 12 * stones
            assert min(board) >= 0
        assert board[6] + board[13] == 12 * stones
