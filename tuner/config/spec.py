"""The models of a study file: what each key may hold, checked without touching the world.

A study file is checked completely before anything trains or touches storage, so
that a typo costs a second and one clear message (file, key, what was expected,
what was found), never a crashed worker an hour into a study.

This module is a leaf: pydantic models and the checks that read the file alone. It
imports no env, torch, numba or optuna, so that a command that only reads a spec
(``tuner status``, ``tuner report``) stays light. Beside it:

- :mod:`tuner.config.checks`: the checks that touch the world (MaskablePPO's
  signature, opponent policy files, the reference ladder).
- :mod:`tuner.config.loading`: YAML -> spec (bounded reading, then the models, the
  checks, the sampler and pruner built once), and the spec stored on a study.

The game's options and their defaults are the game's (:mod:`env.options`): a field
of :class:`EnvSpec` left out of a file takes the game's default, read when a file
is validated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tuner.config.bounds import MAX_EVAL_GAMES, check_value
from tuner.config.pbt_spec import PbtSpec, check_pbt, pbt_defaults
from tuner.config.renamed import RENAMED

# Where a searched or fixed setting goes. Names not listed are MaskablePPO keyword
# arguments (checked against its signature by tuner.config.checks).
POLICY_KEYS = frozenset(
    {
        "net_arch",
        "activation_fn",
        "ortho_init",
        "share_features_extractor",
        "shared_trunk",
        "lookahead",
    }
)
SCHEDULE_KEYS = frozenset({"lr_schedule"})
SCHEDULES = ("constant", "linear")
DEFAULT_EVAL_OPPONENTS = ("random", "greedy")


def _game(name: str) -> Any:
    """A name of the game's options module, read when first needed (no env import here)."""
    import env.options

    return getattr(env.options, name)


def _game_default(name: str) -> Callable[[], Any]:
    """A default factory: the game's one default for option ``name`` (env.options)."""
    return lambda: _game("default_of")(name)


def _renamed_error(section: str, data: Any) -> Any:
    """Refuse a renamed key in a file, naming its new name (before the models read it)."""
    if isinstance(data, dict):
        for old, (new, meaning) in RENAMED.items():
            where, _, key = old.partition(".")
            if where == section and key in data:
                raise ValueError(
                    f"{old} is now {new} ({meaning}); rename the key: "
                    f"{new.rpartition('.')[2]}: {data[key]!r}"
                )
    return data


class _Strict(BaseModel):
    # No inf or nan anywhere a float is read: a bound or weight of .inf passes every
    # comparison and fails only inside a trial.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Param(_Strict):
    """What every searched parameter has: an optional condition on earlier ones."""

    @field_validator("condition", mode="after", check_fields=False)
    @classmethod
    def _listed(cls, v: dict[str, Any] | None) -> dict[str, list[Any]] | None:
        """A single allowed value of a condition is a list of one."""
        if v is None:
            return None
        return {k: a if isinstance(a, list) else [a] for k, a in v.items()}


class FloatParam(_Param):
    """A float drawn from [low, high], optionally on a log scale or a grid of ``step``."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None
    condition: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _range(self) -> FloatParam:
        if not self.low < self.high:
            raise ValueError(f"expected low < high, but got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"expected low > 0 with log: true, but got low={self.low}")
        if self.log and self.step is not None:
            raise ValueError("expected either log: true or a step, but got both")
        if self.step is not None and not 0 < self.step <= self.high - self.low:
            raise ValueError(f"expected 0 < step <= high - low, but got step={self.step}")
        return self


class IntParam(_Param):
    """An integer drawn from [low, high], optionally on a log scale or a grid of ``step``."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = 1
    condition: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _range(self) -> IntParam:
        if not self.low < self.high:
            raise ValueError(f"expected low < high, but got low={self.low}, high={self.high}")
        if self.log and (self.low <= 0 or self.step != 1):
            raise ValueError("expected low >= 1 and no step with log: true")
        if self.step < 1:
            raise ValueError(f"expected step >= 1, but got step={self.step}")
        return self


class CategoricalParam(_Param):
    """One of ``choices``: a list of plain values, or a mapping of names to values.

    Named choices are how structured values are searched: Optuna stores the name
    (``medium``) and the conversion turns it into the value (``[256, 256]``).
    """

    type: Literal["categorical"]
    choices: list[Any] | dict[str, Any]
    condition: dict[str, Any] | None = None

    @field_validator("choices")
    @classmethod
    def _non_empty(cls, v: list[Any] | dict[str, Any]) -> list[Any] | dict[str, Any]:
        if len(v) == 0:
            raise ValueError("expected at least one choice, but got none")
        if isinstance(v, list):
            for c in v:
                if not (c is None or isinstance(c, bool | int | float | str)):
                    raise ValueError(
                        f"expected plain values (number, string, bool, null), but got {c!r}; "
                        "give structured values names instead: {small: [64, 64], ...}"
                    )
        return v

    @property
    def option_names(self) -> list[Any]:
        return list(self.choices)  # the names of named choices, or the plain values

    def value_of(self, name: Any) -> Any:
        return self.choices[name] if isinstance(self.choices, dict) else name


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class SamplerSpec(_Strict):
    type: Literal["tpe", "random", "cmaes", "qmc"] = "tpe"
    options: dict[str, Any] = Field(default_factory=dict)


class PrunerSpec(_Strict):
    type: Literal["median", "percentile", "successive_halving", "hyperband", "wilcoxon", "none"] = (
        "median"
    )
    options: dict[str, Any] = Field(default_factory=dict)


def _check_opening_plies(v: int) -> int:
    limit = _game("MAX_OPENING_PLIES")
    if v > limit:
        raise ValueError(
            f"expected a number less than or equal to {limit} (longer random openings end "
            f"most games before the agent moves), but got {v}"
        )
    return v


class EnvSpec(_Strict):
    """The game the agent trains on, and its opponents: :class:`env.options.GameOptions`'
    fields, with their defaults, as a file writes them.

    ``opponents`` is a list (equal shares) or a mapping of opponent -> share of
    episodes, e.g. ``{pool: 0.7, "minimax:2@0.1": 0.2, random: 0.1}``; ``self`` (the
    learner's current weights) and ``pool`` (its past selves, a snapshot every
    ``snapshot_every`` steps, at most ``pool_size`` kept, drawn by ``pool_sampling``)
    make it self-play.
    """

    # Any: check_opponent_mix gives one message for both forms, not a union's two.
    opponents: Any = Field(default_factory=_game_default("opponents"))
    # Bounds: the one table of tuner.config.bounds, which a searched option meets too.
    stones: int = Field(default_factory=_game_default("stones"))
    empty_capture: bool = Field(default_factory=_game_default("empty_capture"))
    opening_plies: int = Field(default_factory=_game_default("opening_plies"))
    store_diff_coef: float = Field(default_factory=_game_default("store_diff_coef"))
    extra_turn_coef: float = Field(default_factory=_game_default("extra_turn_coef"))
    snapshot_every: int = Field(default_factory=_game_default("snapshot_every"))
    pool_size: int = Field(default_factory=_game_default("pool_size"))
    pool_sampling: str = Field(default_factory=_game_default("pool_sampling"))

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return _renamed_error("env", data)

    @field_validator("opponents")
    @classmethod
    def _opponents(cls, v: Any) -> Any:
        return check_opponent_mix(v)

    @field_validator(
        "stones", "opening_plies", "store_diff_coef", "extra_turn_coef", "snapshot_every",
        "pool_size",
    )  # fmt: skip
    @classmethod
    def _bounded(cls, v: Any, info: ValidationInfo) -> Any:
        check_value(str(info.field_name), v, "")
        return v

    @field_validator("pool_sampling")
    @classmethod
    def _sampling(cls, v: str) -> str:
        return check_pool_sampling(v)


# The env options a study may fix under env: or search: the fields of EnvSpec.
ENV_KEYS = frozenset(EnvSpec.model_fields)


class BudgetSpec(_Strict):
    total_timesteps: int = Field(ge=1)
    n_evaluations: int = Field(3, ge=1)
    n_envs: int = Field(8, ge=1, le=256)
    # Training runs per trial (each with its own seed); the trial's value is their mean
    # (tuner.trial.objective).
    runs: int = Field(1, ge=1, le=32)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return _renamed_error("budget", data)


class EvaluationSpec(_Strict):
    """How strength is measured: batched games in paired openings (each from both seats).

    ``objective`` says what a trial's value is:

    - ``score``: the score ((wins + draws / 2) / games) against each of ``opponents``,
      ``games`` games each, merged by ``combine`` (mean, min, weighted by ``weights``).
    - ``rating``: the Elo rating on the reference ladder (env/ladder.yaml), from
      ``games`` games in all, played in ``rounds`` rounds against the members nearest
      the estimate. It does not saturate as a score against fixed opponents does.

    - ``perfect``: minus the mean regret (seeds given away per move against the best
      move) on the committed solved set of Kalah(6,4) positions (tuner/strength/perfect.py):
      no games, one forward pass, no sampling noise for a given agent.

    ``perfect`` records the perfect-play numbers (optimal share, regret, blunders) beside
    the value at every evaluation: ``None`` (the default) wherever the game is
    Kalah(6,4) with standard capture and the network plays without ``search``; ``true``
    insists (the study must fix that game); ``false`` never.

    ``value_from`` picks which evaluation becomes the value: the final one or the best.

    ``search`` (``ab:4``, ``mcts:100``; env/search.py) evaluates the network as the
    evaluation of a search at each move instead of the bare policy, so that a study
    can ask which network makes the best searcher. It costs one or two orders of
    magnitude more per move (README, "Search at play time"); off by default.
    """

    objective: Literal["score", "rating", "perfect"] = "score"
    opponents: list[str] | None = None
    games: int = Field(
        default_factory=lambda: _game("DEFAULT_EVAL_GAMES"),
        ge=2,
        le=MAX_EVAL_GAMES,
        description="per opponent (score) or in all (rating); even: each opening from both seats",
    )
    opening_plies: int = Field(default_factory=lambda: _game("DEFAULT_OPENING_PLIES"), ge=0)
    combine: Literal["mean", "min", "weighted"] | None = None
    weights: dict[str, float] | None = None
    rounds: int = Field(4, ge=1, le=20)
    value_from: Literal["final", "best"] = "final"
    search: str | None = None
    perfect: bool | None = None

    @field_validator("search")
    @classmethod
    def _search(cls, v: str | None) -> str | None:
        if v is not None:
            from env.search import parse_search  # read when a search is given: spec stays a leaf

            parse_search(v)  # ValueError: "a search is 'ab:D' ... or 'mcts:S', but got ..."
        return v

    @model_validator(mode="before")
    @classmethod
    def _score_defaults(cls, data: Any) -> Any:
        """A score is measured against random and greedy, merged by their mean, unless told."""
        if not isinstance(data, dict) or data.get("objective", "score") != "score":
            return data
        opponents, combine = data.get("opponents"), data.get("combine")
        return {
            **data,
            "opponents": list(DEFAULT_EVAL_OPPONENTS) if opponents is None else opponents,
            "combine": "mean" if combine is None else combine,
        }

    @model_validator(mode="before")
    @classmethod
    def _perfect_plays_no_games(cls, data: Any) -> Any:
        """``objective: perfect`` plays no games: settings of games are a mistake, said so."""
        if not isinstance(data, dict) or data.get("objective") != "perfect":
            return data
        for key in ("games", "opening_plies", "rounds", "search"):
            if key in data:
                raise ValueError(
                    f"expected no {key} with objective: perfect (it plays no games: the "
                    f"network's moves on the solved set), but got {data[key]!r}; remove it"
                )
        if data.get("perfect") is False:
            raise ValueError(
                "expected perfect: true or no perfect with objective: perfect (the value is "
                "the perfect-play score), but got perfect: false"
            )
        return data

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, v: Any) -> Any:
        if v in ("final", "best"):
            raise ValueError(
                f"expected 'score', 'rating' or 'perfect', but got {v!r}; which evaluation "
                f"becomes the trial's value is now value_from: {v}"
            )
        return v

    @field_validator("opponents", "combine", "weights")
    @classmethod
    def _score_only(cls, v: Any, info: ValidationInfo) -> Any:
        objective = info.data.get("objective")
        if v is not None and objective in ("rating", "perfect"):
            against = (
                "the rating plays the reference ladder, env/ladder.yaml"
                if objective == "rating"
                else "it plays no games: the network's moves on the solved set"
            )
            raise ValueError(
                f"expected no {info.field_name} with objective: {objective} ({against}), "
                f"but got {v!r}; remove it or use objective: score"
            )
        if info.field_name == "opponents" and v is not None and not v:
            raise ValueError("expected at least one opponent, but got none")
        if info.field_name == "weights" and info.data.get("combine") == "weighted":
            opponents = info.data.get("opponents") or DEFAULT_EVAL_OPPONENTS
            if set(v or {}) != set(opponents):
                raise ValueError(
                    f"expected weights for exactly the opponents {opponents} with "
                    f"combine: weighted, but got {v}"
                )
        return v

    @field_validator("games")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError(
                f"expected an even number (each opening is played from both seats), but got {v}"
            )
        return v

    @field_validator("opening_plies")
    @classmethod
    def _plies(cls, v: int) -> int:
        return _check_opening_plies(v)

    @model_validator(mode="after")
    def _perfect_without_search(self) -> EvaluationSpec:
        if self.perfect and self.search is not None:
            raise ValueError(
                "perfect: the perfect-play score is of the network's own moves, so expected "
                f"no search with perfect: true, but got search {self.search!r}; remove one"
            )
        return self

    @property
    def perfect_required(self) -> bool:
        """The study asks for the perfect-play numbers (not just where the game allows)."""
        return self.objective == "perfect" or self.perfect is True

    @model_validator(mode="after")
    def _weights(self) -> EvaluationSpec:
        if self.combine == "weighted" and self.weights is None:
            raise ValueError(
                f"evaluation.weights: expected weights for exactly the opponents "
                f"{self.opponents} with combine: weighted, but got none"
            )
        total = sum(self.weights.values()) if self.weights else 1.0
        if self.weights and (min(self.weights.values()) < 0 or not 0 < total < math.inf):
            raise ValueError(
                f"expected weights >= 0 with a positive sum, and finite, but got {self.weights}"
            )
        return self


class StudySpec(_Strict):
    """A whole study file."""

    study_name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)
    description: str = Field("", max_length=10_000)
    direction: Literal["maximize", "minimize"] = "maximize"
    n_trials: int = Field(ge=1)
    seed: int = 0
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    ppo: dict[str, Any] = Field(default_factory=dict)
    search_space: dict[str, Param] = Field(default_factory=dict)
    budget: BudgetSpec
    env: EnvSpec = Field(default_factory=EnvSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    # Population-based training instead of independent trials (tuner/config/pbt_spec.py).
    pbt: PbtSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _pbt_defaults(cls, data: Any) -> Any:
        return pbt_defaults(data)

    @field_validator("study_name")
    @classmethod
    def _file_name(cls, v: str) -> str:
        if set(v) == {"."}:
            raise ValueError(f"expected a name that can name files, but got {v!r}")
        return v

    @field_validator("search_space", mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return _renamed_error("search_space", data)

    @model_validator(mode="after")
    def _cross_checks(self) -> StudySpec:
        """The checks that read several fields, in the order their errors surface."""
        self._check_placement()
        self._check_conditions()
        self._check_named_choices()
        self._check_budget()
        check_pbt(self)
        return self

    def _check_placement(self) -> None:
        """Fixed settings are numbers where numbers are meant; a setting is fixed or searched,
        not both; env options live under env:."""
        check_ppo_numbers(self.ppo, "ppo")
        both = set(self.ppo) & set(self.search_space)
        if both:
            raise ValueError(f"{sorted(both)} appear in both ppo and search_space; keep one")
        for key in ENV_KEYS & set(self.ppo):
            raise ValueError(f"ppo.{key}: env options belong under env:, not ppo:")

    def _check_conditions(self) -> None:
        """A condition names an earlier parameter and values it can take.

        Conditions are read in file order, so a later parameter cannot gate an
        earlier one.
        """
        order = list(self.search_space)
        for name, param in self.search_space.items():
            for other, allowed in (param.condition or {}).items():
                if other not in self.search_space or order.index(other) >= order.index(name):
                    raise ValueError(
                        f"search_space.{name}.condition: expected a parameter searched "
                        f"before {name!r} (conditions are read in file order), but got {other!r}"
                    )
                cond = self.search_space[other]
                if isinstance(cond, CategoricalParam):
                    unknown = [a for a in allowed if a not in cond.option_names]
                    if unknown:
                        raise ValueError(
                            f"search_space.{name}.condition.{other}: expected values among "
                            f"its choices {cond.option_names}, but got {unknown}; the "
                            "condition could never hold"
                        )

    def _check_named_choices(self) -> None:
        """Searched opponent mixes, pool samplings and schedules have the forms they need.

        A typo fails when the file is loaded, not in the one trial that happens to
        sample it. (Opponent and activation names are checked against the game by
        :mod:`tuner.config.checks`.)
        """
        mix = self.search_space.get("opponents")
        if isinstance(mix, CategoricalParam):
            if not isinstance(mix.choices, dict):
                raise ValueError(
                    "search_space.opponents: expected named choices "
                    "({mostly_pool: {pool: 0.8, random: 0.2}, ...}), but got a list"
                )
            for label, value in mix.choices.items():
                try:
                    check_opponent_mix(value)
                except ValueError as err:
                    raise ValueError(f"search_space.opponents.{label}: {err}") from None
        sampling = self.search_space.get("pool_sampling")
        for s in sampling.option_names if isinstance(sampling, CategoricalParam) else []:
            try:
                check_pool_sampling(s)
            except ValueError as err:
                raise ValueError(f"search_space.pool_sampling: {err}") from None
        sched = self.search_space.get("lr_schedule")
        for s in sched.option_names if isinstance(sched, CategoricalParam) else []:
            if s not in SCHEDULES:
                raise ValueError(f"lr_schedule: expected 'constant' or 'linear', but got {s!r}")

    def _check_budget(self) -> None:
        """The objective and pruner fit the budget. (The batch's fit to the rollout is
        checked with the bounds of each value: tuner.config.checks.check_bounds.)"""
        objective = self.evaluation.objective
        if objective in ("rating", "perfect") and self.direction != "maximize":
            better = "a higher rating" if objective == "rating" else "less regret, a higher value,"
            raise ValueError(
                f"direction: expected maximize with evaluation.objective: {objective} "
                f"({better} is a stronger agent), but got {self.direction}"
            )
        if self.budget.total_timesteps < self.budget.n_evaluations:
            raise ValueError("budget: expected total_timesteps >= n_evaluations")
        # With several runs a trial reports one value per run (step = run index), which
        # only the Wilcoxon pruner reads that way; it compares runs, so it needs several.
        if self.budget.runs > 1 and self.pruner.type not in ("wilcoxon", "none"):
            raise ValueError(
                f"pruner.type: expected wilcoxon or none with budget.runs: "
                f"{self.budget.runs}, but got {self.pruner.type}"
            )
        if self.pruner.type == "wilcoxon" and self.budget.runs < 2:
            raise ValueError(
                "budget.runs: expected at least 2 with pruner.type: wilcoxon (it compares "
                f"a trial's runs with the best trial's), but got {self.budget.runs}"
            )


def check_opponent_mix(v: Any) -> Any:
    """A list of opponent names, or a mapping name -> share (a number >= 0, positive sum).

    Whether each name is an opponent the game knows is :mod:`tuner.config.checks`'s
    question (it may load a policy file).
    """
    names = list(v) if isinstance(v, list | dict) else None
    if names is None:
        raise ValueError(
            f"expected a list of opponents or a mapping opponent -> share, but got {v!r}"
        )
    if not names:
        raise ValueError("expected at least one opponent, but got none")
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"expected opponent names (strings), but got {name!r}")
    if isinstance(v, dict):
        for name, share in v.items():
            if isinstance(share, bool) or not isinstance(share, int | float):
                raise ValueError(f"{name}: expected a share (a number >= 0), but got {share!r}")
            if not math.isfinite(share) or share < 0:
                raise ValueError(f"{name}: expected a finite share >= 0, but got {share!r}")
        total = sum(v.values())
        if total <= 0 or not math.isfinite(total):
            # An infinite sum made every share but the last 0/inf: one opponent played.
            raise ValueError(f"expected shares with a positive sum, and finite, but got {v}")
    return v


def check_ppo_numbers(ppo: dict[str, Any], where: str) -> None:
    """Fixed MaskablePPO settings (a study's ``ppo``, an export's ``ppo_kwargs``): finite
    numbers, and no numbers hiding in strings."""
    for key, val in ppo.items():
        _check_finite(val, f"{where}.{key}")
        if isinstance(val, str) and _looks_numeric(val):
            raise ValueError(
                f"{where}.{key}: expected a number, but got the string {val!r}; YAML reads "
                "'3e-4' as a string: write floats with a dot and a signed exponent (3.0e-4)"
            )


def _check_finite(value: Any, where: str) -> None:
    """No inf or nan in fixed settings (YAML reads .inf and .nan as floats)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, but got {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}")
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_pool_sampling(v: Any) -> str:
    samplings = _game("SAMPLINGS")
    if v not in samplings:
        raise ValueError(f"expected one of {list(samplings)}, but got {v!r}")
    return v


def _format_loc(loc: tuple[Any, ...]) -> str:
    # Drop pydantic's discriminator tags ("float", "int", "categorical") from the path.
    parts = [str(p) for p in loc if p not in ("float", "int", "categorical")]
    return ".".join(parts) or "(top level)"


def format_error(source: str, err: ValidationError) -> str:
    """The first problem of a validation, as one line: source, key, expected, found."""
    first = err.errors()[0]
    loc = _format_loc(first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{loc}'; check its spelling against the study schema"
    if kind == "missing":
        return f"{source}: key '{loc}' is required but missing"
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        found = first.get("input")
        found = found.get("type") if isinstance(found, dict) else found
        return f"{source}: key '{loc}': expected type: float, int or categorical, but got {found!r}"
    msg = msg.replace("Input should be", "expected")
    found = first.get("input")
    tail = "" if "but got" in msg or kind == "value_error" else f", but got {found!r}"
    if not first["loc"]:  # a whole-file check names its key in the message itself
        return f"{source}: {msg}"
    return f"{source}: key '{loc}': {msg}{tail}"
