"""A retrained agent's strength against its training steps, from its checkpoints.

``tuner train FILE --save-every N --out agent.zip`` leaves ``agent_<steps>_steps.zip``
beside ``agent.zip``. ``make learning-curve MODEL=agent.zip`` rates each of them on the
reference ladder (adaptive games, as a trial's evaluation) and scores it against
perfect play on the solved set, then writes ``learning_curve.json`` and
``learning_curve.png`` (rating with its 95% interval, and mean regret, against steps)
beside the model, or into ``--out``.

Why checkpoints and not the run's own evaluations: the run evaluates a handful of times
(its export's ``n_evaluations``); checkpoints can be measured afterwards, as densely as
they were saved, with as many games as the figure needs, on a core the training did not
need. ``--jobs`` measures several checkpoints at once (one core each).
"""

from __future__ import annotations

import argparse
import json
import re
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

_STEPS = re.compile(r"_(\d+)_steps\.zip$")


def checkpoints(model: Path) -> list[tuple[int | None, Path]]:
    """``(steps, path)`` of each checkpoint of ``model`` by steps; the final model last (None)."""
    found: list[tuple[int | None, Path]] = []
    for path in model.parent.glob(f"{model.stem}_*_steps.zip"):
        match = _STEPS.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    found.sort(key=lambda row: row[0] or 0)
    return [*found, (None, model)] if model.exists() else found


@cache
def _scorer() -> Any:
    """The solved set read once per process, not once per checkpoint."""
    from tuner.strength.perfect import perfect_scorer

    return perfect_scorer()


def measure(path: str, games: int, seed: int) -> dict[str, Any]:
    """One checkpoint's rating (``games`` adaptive games) and perfect-play score."""
    import torch

    from env.opponents import PolicyOpponent
    from env.policy_files import load_policy
    from tuner.strength.evaluate import rate_policy

    torch.set_num_threads(1)
    policy = PolicyOpponent(load_policy(path, device="cpu"), stones=4, name=f"policy:{path}")
    rated = rate_policy(policy, games=games, seed=seed)
    perfect = _scorer()(policy)
    return {
        "rating": rated.rating.rating,
        "low": rated.rating.low,
        "high": rated.rating.high,
        "games": rated.games,
        "perfect": perfect.as_dict(),
    }


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tuner.strength.ladder import load_ladder

    steps = [r["steps"] / 1e6 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.errorbar(
        steps,
        [r["rating"] for r in rows],
        yerr=[[r["rating"] - r["low"] for r in rows], [r["high"] - r["rating"] for r in rows]],
        marker="o", capsize=3, color="tab:blue", label="rating (95% interval)",
    )  # fmt: skip
    for member in load_ladder().members:
        if member.name in ("minimax:2", "minimax:3", "minimax:4", "minimax:6"):
            ax.axhline(member.rating, color="grey", lw=0.8, ls=":")
            ax.text(steps[0], member.rating, f" {member.name} {member.rating:.0f}",
                    va="bottom", fontsize=8)  # fmt: skip
    ax.set_xlabel("training steps (millions)")
    ax.set_ylabel("rating on the reference ladder (Elo)")
    right = ax.twinx()
    right.plot(steps, [r["perfect"]["regret"] for r in rows], marker="s", color="tab:red",
               label="mean regret on solved positions")  # fmt: skip
    right.set_ylabel("mean regret (stones, lower is better)", color="tab:red")
    lines = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="the final model; its checkpoints lie beside it")
    parser.add_argument("--games", type=int, default=400, help="rating games per checkpoint")
    parser.add_argument("--seed", type=int, default=0, help="the rating games' openings")
    parser.add_argument("--jobs", type=int, default=1, help="checkpoints measured at once")
    parser.add_argument("--final-steps", type=int, default=None,
                        help="the final model's steps (default: the last checkpoint's)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="folder (default: the model's)")
    args = parser.parse_args(argv)
    found = checkpoints(args.model)
    if not found:
        parser.error(f"expected {args.model} or its checkpoints {args.model.stem}_N_steps.zip, "
                     "but found neither; train with `tuner train FILE --save-every N`")  # fmt: skip
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        measured = list(pool.map(measure, [str(p) for _, p in found],
                                 [args.games] * len(found), [args.seed] * len(found)))  # fmt: skip
    rows = []
    for (steps, path), m in zip(found, measured, strict=True):
        steps = (
            steps
            if steps is not None
            else (args.final_steps or (found[-2][0] if len(found) > 1 else 0))
        )
        rows.append({"steps": steps, "model": path.name, **m})
        p = m["perfect"]
        print(f"{steps:>10,} steps  rating {m['rating']:.0f} [{m['low']:.0f}, {m['high']:.0f}] "
              f"({m['games']} games)  optimal {p['optimal']:.3f}  regret {p['regret']:.3f}  "
              f"blunders {p['blunders']:.3f}  {path.name}", flush=True)  # fmt: skip
    out = args.out or args.model.parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "learning_curve.json").write_text(json.dumps(rows, indent=1))
    plot(rows, out / "learning_curve.png", f"{args.model.name}: strength against training steps")
    print(f"figure: {out / 'learning_curve.png'}; numbers: {out / 'learning_curve.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
