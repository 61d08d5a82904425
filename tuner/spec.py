"""Study file -> validated spec. The only module that reads study YAML.

A study file is checked completely before anything trains or touches storage, so
that a typo costs a second and one clear message (file, key, what was expected,
what was found), never a crashed worker an hour into a study.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from env.arena import DEFAULT_OPENING_PLIES
from env.kalaha_env import MAX_OPENING_PLIES
from env.league import LEAGUE_NAMES, SAMPLINGS
from env.opponents import make_opponent
from tuner.errors import UserError

STUDIES_DIR = Path("studies")

# Where a searched or fixed setting goes. Names not listed are MaskablePPO keyword
# arguments (checked against its signature).
POLICY_KEYS = {
    "net_arch",
    "activation_fn",
    "ortho_init",
    "share_features_extractor",
    "shared_trunk",
}
ENV_KEYS = {
    "store_diff_coef",
    "extra_turn_coef",
    "opening_plies",
    "seeds",
    "empty_capture",
    # the training opponents and the self-play league (env/league.py)
    "opponents",
    "snapshot_every",
    "pool_size",
    "pool_sampling",
}
SCHEDULE_KEYS = {"lr_schedule"}
# Activation names a study may use -> their torch.nn class (looked up by ``materialize``).
ACTIVATIONS = {
    "tanh": "Tanh",
    "relu": "ReLU",
    "elu": "ELU",
    "leaky_relu": "LeakyReLU",
    "gelu": "GELU",
    "silu": "SiLU",
}
DEFAULT_EVAL_OPPONENTS = ("random", "greedy")
NOT_TUNABLE = {"policy", "env", "tensorboard_log", "verbose", "seed", "device", "_init_setup_model"}


def _ppo_keys() -> set[str]:
    from sb3_contrib import MaskablePPO

    return set(inspect.signature(MaskablePPO.__init__).parameters) - {"self"} - NOT_TUNABLE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatParam(_Strict):
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
        return self


class IntParam(_Strict):
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
        return self


class CategoricalParam(_Strict):
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
    type: Literal["median", "percentile", "successive_halving", "hyperband", "none"] = "median"
    options: dict[str, Any] = Field(default_factory=dict)


class EnvSpec(_Strict):
    """The training environment: opponents drawn per episode, and the env options.

    ``opponents`` is a list (equal shares) or a mapping of opponent -> share of
    episodes, e.g. ``{pool: 0.7, "minimax:2@0.1": 0.2, random: 0.1}``; ``self`` (the
    learner's current weights) and ``pool`` (its past selves, a snapshot every
    ``snapshot_every`` steps, at most ``pool_size`` kept, drawn by ``pool_sampling``)
    make it self-play.
    """

    # Any: check_training_opponents gives one message for both forms, not a union's two.
    opponents: Any = Field(default_factory=lambda: ["random"])
    seeds: int = Field(4, ge=3, le=6)
    empty_capture: bool = False
    opening_plies: int = Field(0, ge=0, le=MAX_OPENING_PLIES)
    store_diff_coef: float = 0.0
    extra_turn_coef: float = 0.0
    snapshot_every: int = Field(50_000, ge=1)
    pool_size: int = Field(10, ge=1, le=100)
    pool_sampling: Literal["uniform", "recent", "pfsp"] = "pfsp"

    @field_validator("opponents")
    @classmethod
    def _opponents(cls, v: Any) -> Any:
        return check_training_opponents(v)

    @field_validator("store_diff_coef", "extra_turn_coef")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"expected a finite number, but got {v}")
        return v


class BudgetSpec(_Strict):
    total_timesteps: int = Field(ge=1)
    n_evaluations: int = Field(3, ge=1)
    n_envs: int = Field(8, ge=1, le=256)


class EvaluationSpec(_Strict):
    """How strength is measured: batched games in paired openings (each from both seats).

    ``objective`` says what a trial's value is:

    - ``score``: the score ((wins + draws / 2) / games) against each of ``opponents``,
      ``games`` games each, merged by ``combine`` (mean, min, weighted by ``weights``).
    - ``rating``: the Elo rating on the reference ladder (env/ladder.yaml), from
      ``games`` games in all, played in ``rounds`` rounds against the members nearest
      the estimate. It does not saturate as a score against fixed opponents does.

    ``value_from`` picks which evaluation becomes the value: the final one or the best.
    """

    objective: Literal["score", "rating"] = "score"
    opponents: list[str] | None = None
    games: int = Field(
        100,
        ge=2,
        description="per opponent (score) or in all (rating); even: each opening from both seats",
    )
    opening_plies: int = Field(DEFAULT_OPENING_PLIES, ge=0, le=MAX_OPENING_PLIES)
    combine: Literal["mean", "min", "weighted"] | None = None
    weights: dict[str, float] | None = None
    rounds: int = Field(4, ge=1, le=20)
    value_from: Literal["final", "best"] = "final"

    @field_validator("objective", mode="before")
    @classmethod
    def _objective(cls, v: Any) -> Any:
        if v in ("final", "best"):
            raise ValueError(
                f"expected 'score' or 'rating', but got {v!r}; which evaluation becomes the "
                f"trial's value is now value_from: {v}"
            )
        return v

    @field_validator("opponents", "combine", "weights")
    @classmethod
    def _score_only(cls, v: Any, info: ValidationInfo) -> Any:
        if v is not None and info.data.get("objective") == "rating":
            raise ValueError(
                f"expected no {info.field_name} with objective: rating (the rating plays the "
                f"reference ladder, env/ladder.yaml), but got {v!r}; remove it or use "
                "objective: score"
            )
        if info.field_name == "opponents" and v is not None:
            return _check_opponents(v)
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

    @model_validator(mode="after")
    def _defaults(self) -> EvaluationSpec:
        if self.objective == "score":
            object.__setattr__(self, "opponents", self.opponents or list(DEFAULT_EVAL_OPPONENTS))
            object.__setattr__(self, "combine", self.combine or "mean")
            if self.combine == "weighted" and self.weights is None:
                raise ValueError(
                    f"evaluation.weights: expected weights for exactly the opponents "
                    f"{self.opponents} with combine: weighted, but got none"
                )
        return self


class StudySpec(_Strict):
    """A whole study file."""

    study_name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
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

    @model_validator(mode="after")
    def _keys(self) -> StudySpec:
        ppo_keys = _ppo_keys()
        known = ppo_keys | POLICY_KEYS | SCHEDULE_KEYS | ENV_KEYS
        for where, keys in (("ppo", self.ppo), ("search_space", self.search_space)):
            for key in keys:
                if key not in known:
                    raise ValueError(
                        f"{where}.{key}: unknown setting; expected a MaskablePPO argument "
                        f"({', '.join(sorted(ppo_keys))}), a policy setting "
                        f"({', '.join(sorted(POLICY_KEYS))}), lr_schedule or an env option "
                        f"({', '.join(sorted(ENV_KEYS))})"
                    )
        for key, val in self.ppo.items():
            if isinstance(val, str) and _looks_numeric(val):
                raise ValueError(
                    f"ppo.{key}: expected a number, but got the string {val!r}; YAML reads "
                    "'3e-4' as a string: write floats with a dot and a signed exponent (3.0e-4)"
                )
        both = set(self.ppo) & set(self.search_space)
        if both:
            raise ValueError(f"{sorted(both)} appear in both ppo and search_space; keep one")
        for key in ENV_KEYS & set(self.ppo):
            raise ValueError(f"ppo.{key}: env options belong under env:, not ppo:")
        for name, param in self.search_space.items():
            for other, allowed in (param.condition or {}).items():
                if other not in self.search_space or other == name:
                    raise ValueError(
                        f"search_space.{name}.condition: expected another searched "
                        f"parameter, but got {other!r}"
                    )
                if not isinstance(allowed, list):
                    param.condition[other] = [allowed]
        act = self.search_space.get("activation_fn")
        fixed_act = self.ppo.get("policy_kwargs", {}).get("activation_fn")
        names = act.option_names if isinstance(act, CategoricalParam) else []
        for a in [*names, *([fixed_act] if fixed_act else [])]:
            if a not in ACTIVATIONS:
                raise ValueError(
                    f"activation_fn: expected one of {list(ACTIVATIONS)}, but got {a!r}"
                )
        mix = self.search_space.get("opponents")
        if isinstance(mix, CategoricalParam):
            if not isinstance(mix.choices, dict):
                raise ValueError(
                    "search_space.opponents: expected named choices "
                    "({mostly_pool: {pool: 0.8, random: 0.2}, ...}), but got a list"
                )
            for label, value in mix.choices.items():
                try:
                    check_training_opponents(value)
                except ValueError as err:
                    raise ValueError(f"search_space.opponents.{label}: {err}") from None
        sampling = self.search_space.get("pool_sampling")
        for s in sampling.option_names if isinstance(sampling, CategoricalParam) else []:
            if s not in SAMPLINGS:
                raise ValueError(
                    f"search_space.pool_sampling: expected one of {list(SAMPLINGS)}, but got {s!r}"
                )
        sched = self.search_space.get("lr_schedule")
        for s in sched.option_names if isinstance(sched, CategoricalParam) else []:
            if s not in ("constant", "linear"):
                raise ValueError(f"lr_schedule: expected 'constant' or 'linear', but got {s!r}")
        n_steps, batch = self.ppo.get("n_steps", 2048), self.ppo.get("batch_size", 64)
        if "n_steps" not in self.search_space and "batch_size" not in self.search_space:
            rollout = n_steps * self.budget.n_envs
            if batch > rollout:
                raise ValueError(
                    f"ppo.batch_size: expected at most n_steps * n_envs = {rollout}, "
                    f"but got {batch}"
                )
        if self.evaluation.objective == "rating":
            if self.direction != "maximize":
                raise ValueError(
                    "direction: expected maximize with evaluation.objective: rating (a higher "
                    f"rating is a stronger agent), but got {self.direction}"
                )
            _check_ladder_game(self)
        if self.budget.total_timesteps < self.budget.n_evaluations:
            raise ValueError("budget: expected total_timesteps >= n_evaluations")
        return self


def check_training_opponents(v: Any) -> Any:
    """A list of opponents, or a mapping opponent -> share; ``self`` and ``pool`` allowed."""
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
    fixed = [n for n in names if n not in LEAGUE_NAMES]
    if fixed:
        _check_opponents(fixed)
    if isinstance(v, dict):
        for name, share in v.items():
            if isinstance(share, bool) or not isinstance(share, int | float):
                raise ValueError(f"{name}: expected a share (a number >= 0), but got {share!r}")
            if not math.isfinite(share) or share < 0:
                raise ValueError(f"{name}: expected a finite share >= 0, but got {share!r}")
        if sum(v.values()) <= 0:
            raise ValueError(f"expected shares with a positive sum, but got {v}")
    return v


def _check_ladder_game(spec: StudySpec) -> None:
    """A rating is only meaningful on the game the ladder was measured on."""
    from tuner.ladder import load_ladder

    ladder = load_ladder()
    searched = {"seeds", "empty_capture"} & set(spec.search_space)
    if spec.env.seeds != ladder.seeds or spec.env.empty_capture or searched:
        found = f"seeds {spec.env.seeds}, empty_capture {spec.env.empty_capture}"
        found += f", searched: {sorted(searched)}" if searched else ""
        raise ValueError(
            f"env: expected seeds {ladder.seeds} and empty_capture false, not searched, with "
            f"evaluation.objective: rating (the reference ladder was measured on that game), "
            f"but got {found}; use objective: score for other variants"
        )


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_opponents(v: list[str]) -> list[str]:
    if not v:
        raise ValueError("expected at least one opponent, but got none")
    for spec in v:
        if not spec.startswith("policy:"):
            make_opponent(spec)  # raises ValueError with the valid forms
    return v


def _format_loc(loc: tuple[Any, ...]) -> str:
    # Drop pydantic's discriminator tags ("float", "int", "categorical") from the path.
    parts = [str(p) for p in loc if p not in ("float", "int", "categorical")]
    return ".".join(parts) or "(top level)"


def _format_error(source: str, err: ValidationError) -> str:
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


def resolve_study_path(name_or_path: str | Path) -> Path:
    """``net_arch`` -> ``studies/net_arch.yaml``; a path is taken as it is."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return STUDIES_DIR / f"{p}.yaml"


def parse_spec(data: Any, source: str = "<study>") -> StudySpec:
    """Validate already-loaded YAML data; raise :class:`UserError` on the first problem."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of keys at the top level, but got {data!r}")
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as err:
        raise UserError(_format_error(source, err)) from None
    # Build the sampler and pruner once now: bad options fail here, before storage.
    from tuner.study import build_pruner, build_sampler

    try:
        build_sampler(spec, seed=0)
        build_pruner(spec)
    except UserError as err:
        raise UserError(f"{source}: {err}") from None
    return spec


def load_spec(name_or_path: str | Path) -> StudySpec:
    """Read and validate a study file by name (``smoke``) or path."""
    path = resolve_study_path(name_or_path)
    if not path.exists():
        known = sorted(p.stem for p in STUDIES_DIR.glob("*.yaml")) if STUDIES_DIR.is_dir() else []
        raise UserError(
            f"study file {str(path)!r} does not exist; expected one of {known} "
            "or a path to a .yaml file"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {err}") from None
    return parse_spec(data, str(path))
