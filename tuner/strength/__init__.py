"""Measuring an agent's strength.

- ``evaluate``: batched games against opponents -> scores, and the rating evaluator.
- ``rating``: Elo by maximum likelihood (Bradley-Terry with fixed members).
- ``ladder``: the reference ladder and its round robin.
- ``league``: the self-play league's snapshots inside ``learn()``.
"""
