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

from env.arena import DEFAULT_EVAL_GAMES, DEFAULT_OPENING_PLIES
from env.kalaha_env import MAX_OPENING_PLIES
from env.league import LEAGUE_NAMES, SAMPLINGS
from env.opponents import make_opponent
from env.policy_files import ACTIVATIONS
from tuner.base.errors import UserError
from tuner.base.settings import DEFAULT_STUDIES

STUDIES_DIR = DEFAULT_STUDIES  # Settings.studies_dir ($KALAHA_STUDIES) is passed in

# Where a searched or fixed setting goes. Names not listed are MaskablePPO keyword
# arguments (checked against its signature).
POLICY_KEYS = {
    "net_arch",
    "activation_fn",
    "ortho_init",
    "share_features_extractor",
    "shared_trunk",
    "lookahead",
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
DEFAULT_EVAL_OPPONENTS = ("random", "greedy")
NOT_TUNABLE = {"policy", "env", "tensorboard_log", "verbose", "seed", "device", "_init_setup_model"}


def _ppo_keys() -> set[str]:
    from sb3_contrib import MaskablePPO

    return set(inspect.signature(MaskablePPO.__init__).parameters) - {"self"} - NOT_TUNABLE


# Policy constructor arguments a YAML file cannot give (classes, spaces) or that the
# tuner sets itself (``shared_trunk`` sets the features extractor).
_POLICY_NOT_SETTABLE = {
    "self",
    "observation_space",
    "action_space",
    "lr_schedule",
    "features_extractor_class",
    "features_extractor_kwargs",
    "optimizer_class",
}


def policy_keys() -> set[str]:
    """Keys ``ppo.policy_kwargs`` may hold: MaskableActorCriticPolicy's own, by name."""
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

    params = set(inspect.signature(MaskableActorCriticPolicy.__init__).parameters)
    return (params - _POLICY_NOT_SETTABLE) | POLICY_KEYS


def check_policy_kwargs(value: Any, where: str = "ppo.policy_kwargs") -> None:
    """A mapping whose keys the policy takes: a typo (``ortho_int``) fails here, not in
    every trial."""
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping of policy settings, but got {value!r}")
    allowed = policy_keys()
    for key in value:
        if key not in allowed:
            raise ValueError(
                f"{where}.{key}: unknown policy setting; expected one of {sorted(allowed)}"
            )
    if "activation_fn" in value and value["activation_fn"] not in ACTIVATIONS:
        raise ValueError(
            f"{where}.activation_fn: expected one of {list(ACTIVATIONS)}, "
            f"but got {value['activation_fn']!r}"
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


class _Strict(BaseModel):
    # No inf or nan anywhere a float is read: a bound or weight of .inf passes every
    # comparison and fails only inside a trial.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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
        if self.step is not None and not 0 < self.step <= self.high - self.low:
            raise ValueError(f"expected 0 < step <= high - low, but got step={self.step}")
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
        if self.step < 1:
            raise ValueError(f"expected step >= 1, but got step={self.step}")
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
    type: Literal["median", "percentile", "successive_halving", "hyperband", "wilcoxon", "none"] = (
        "median"
    )
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
    # Training runs (seeds) per trial; the trial's value is their mean (tuner.trial.objective).
    seeds: int = Field(1, ge=1, le=32)


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
        DEFAULT_EVAL_GAMES,
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
        if self.weights and (min(self.weights.values()) < 0 or sum(self.weights.values()) <= 0):
            raise ValueError(f"expected weights >= 0 with a positive sum, but got {self.weights}")
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

    @field_validator("study_name")
    @classmethod
    def _file_name(cls, v: str) -> str:
        if set(v) == {"."}:
            raise ValueError(f"expected a name that can name files, but got {v!r}")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> StudySpec:
        """The checks that read several fields, in the order their errors surface."""
        self._check_setting_names()
        self._check_conditions()
        self._check_named_choices()
        self._check_budget()
        return self

    def _check_setting_names(self) -> None:
        """Every ``ppo`` and ``search_space`` key names a setting, in one place only."""
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
        check_ppo_values(self.ppo, "ppo")
        both = set(self.ppo) & set(self.search_space)
        if both:
            raise ValueError(f"{sorted(both)} appear in both ppo and search_space; keep one")
        for key in ENV_KEYS & set(self.ppo):
            raise ValueError(f"ppo.{key}: env options belong under env:, not ppo:")

    def _check_conditions(self) -> None:
        """A condition names an earlier parameter and values it can take.

        Conditions are read in file order, so a later parameter cannot gate an
        earlier one; a single allowed value is normalised to a list here.
        """
        order = list(self.search_space)
        for name, param in self.search_space.items():
            for other, allowed in (param.condition or {}).items():
                if other not in self.search_space or order.index(other) >= order.index(name):
                    raise ValueError(
                        f"search_space.{name}.condition: expected a parameter searched "
                        f"before {name!r} (conditions are read in file order), but got {other!r}"
                    )
                if not isinstance(allowed, list):
                    allowed = param.condition[other] = [allowed]
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
        """Choices the tuner turns into objects name ones it knows.

        Activations, opponent mixes, pool samplings and schedules: a typo fails when
        the file is loaded, not in the one trial that happens to sample it.
        """
        act = self.search_space.get("activation_fn")
        names = act.option_names if isinstance(act, CategoricalParam) else []
        for a in names:
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

    def _check_budget(self) -> None:
        """The batch fits the rollout, and the objective and pruner fit the budget."""
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
        # With several seeds a trial reports one value per seed (step = seed index), which
        # only the Wilcoxon pruner reads that way; it compares seeds, so it needs several.
        if self.budget.seeds > 1 and self.pruner.type not in ("wilcoxon", "none"):
            raise ValueError(
                f"pruner.type: expected wilcoxon or none with budget.seeds: "
                f"{self.budget.seeds}, but got {self.pruner.type}"
            )
        if self.pruner.type == "wilcoxon" and self.budget.seeds < 2:
            raise ValueError(
                "budget.seeds: expected at least 2 with pruner.type: wilcoxon (it compares "
                f"a trial's seeds with the best trial's), but got {self.budget.seeds}"
            )


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


def check_ppo_values(ppo: dict[str, Any], where: str) -> None:
    """Fixed MaskablePPO settings (a study's ``ppo``, an export's ``ppo_kwargs``): finite
    numbers, no numbers hiding in strings, a ``policy_kwargs`` the policy takes."""
    if "policy_kwargs" in ppo:
        check_policy_kwargs(ppo["policy_kwargs"], f"{where}.policy_kwargs")
    for key, val in ppo.items():
        _check_finite(val, f"{where}.{key}")
        if isinstance(val, str) and _looks_numeric(val):
            raise ValueError(
                f"{where}.{key}: expected a number, but got the string {val!r}; YAML reads "
                "'3e-4' as a string: write floats with a dot and a signed exponent (3.0e-4)"
            )


def ppo_argument_keys() -> set[str]:
    """MaskablePPO keyword arguments a file may set (its signature, less what the tuner sets)."""
    return _ppo_keys()


def _check_ladder_game(spec: StudySpec) -> None:
    """A rating is only meaningful on the game the ladder was measured on."""
    from tuner.strength.ladder import load_ladder

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
        # Raises ValueError with the valid forms; a policy file must exist and load
        # (safely: weights and metadata only) before any trial counts on it.
        make_opponent(spec)
    return v


def _format_loc(loc: tuple[Any, ...]) -> str:
    # Drop pydantic's discriminator tags ("float", "int", "categorical") from the path.
    parts = [str(p) for p in loc if p not in ("float", "int", "categorical")]
    return ".".join(parts) or "(top level)"


def format_error(source: str, err: ValidationError) -> str:
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


def resolve_study_path(name_or_path: str | Path, studies_dir: Path = STUDIES_DIR) -> Path:
    """``net_arch`` -> ``studies/net_arch.yaml``; a path is taken as it is."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return studies_dir / f"{p}.yaml"


# A study file is a few KB. The bounds stop a file, or a YAML alias bomb (a few
# anchors that expand a thousandfold each), from filling memory and the database.
MAX_YAML_BYTES = 1024 * 1024
MAX_YAML_EXPANDED = 1_000_000  # nodes plus scalar characters, after alias expansion


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses documents whose aliases expand too far."""

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node, {}, set())
        return node


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int]) -> int:
    """Size of ``node`` once every alias is copied out; raises past the bound."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise yaml.YAMLError("a recursive alias (an anchor used inside itself)")
    active.add(key)
    if isinstance(node, yaml.ScalarNode):
        size = 1 + len(node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(n, memo, active) for n in node.value)
    else:
        size = 1 + sum(
            _expanded_size(k, memo, active) + _expanded_size(v, memo, active) for k, v in node.value
        )
    active.discard(key)
    if size > MAX_YAML_EXPANDED:
        raise yaml.YAMLError(
            f"its aliases expand to more than {MAX_YAML_EXPANDED} nodes and characters; "
            "a study file is a few KB: write the values out, without nested anchors"
        )
    memo[key] = size
    return size


def read_yaml(path: Path) -> Any:
    """Read a YAML file the project reads (study, export), bounded, as one-line errors."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UserError(f"{path}: expected a YAML file, but it is not a regular file")
        if size > MAX_YAML_BYTES:
            raise UserError(
                f"{path}: expected a YAML file of at most {MAX_YAML_BYTES} bytes, but it has {size}"
            )
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"{path}: cannot be read: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(
            f"{path}: expected UTF-8 text, but byte {raw[err.start]:#04x} at offset "
            f"{err.start} is not; save the file as UTF-8"
        ) from None
    try:
        return yaml.load(text, Loader=_BoundedLoader)
    except yaml.YAMLError as err:
        line = " ".join(str(err).split())
        raise UserError(f"{path}: not valid YAML: {line[:300]}") from None


def upgrade_stored_spec(data: Any) -> Any:
    """A spec recorded on a study by an earlier version, in today's schema.

    Before the rating objective, ``evaluation.objective: final|best`` said which
    evaluation became the value; that is ``value_from`` now. A study file with the
    old key is an error (its author can fix it); a study in a database is history,
    so its recorded spec is read in the new form rather than refused.
    """
    if not isinstance(data, dict) or not isinstance(data.get("evaluation"), dict):
        return data
    evaluation = dict(data["evaluation"])
    if evaluation.get("objective") in ("final", "best"):
        evaluation["value_from"] = evaluation.pop("objective")
        evaluation["objective"] = "score"
        return {**data, "evaluation": evaluation}
    return data


def parse_spec(data: Any, source: str = "<study>") -> StudySpec:
    """Validate already-loaded YAML data; raise :class:`UserError` on the first problem."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of keys at the top level, but got {data!r}")
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as err:
        raise UserError(format_error(source, err)) from None
    # Build the sampler and pruner once now: bad options fail here, before storage.
    # Imported here: optuna is not needed to read a spec, and the import stays cheap.
    from tuner.config.samplers import build_pruner, build_sampler

    try:
        build_sampler(spec, seed=0)
        build_pruner(spec)
    except UserError as err:
        raise UserError(f"{source}: {err}") from None
    return spec


def load_spec(name_or_path: str | Path, studies_dir: Path = STUDIES_DIR) -> StudySpec:
    """Read and validate a study file by name (``smoke``, in ``studies_dir``) or path."""
    path = resolve_study_path(name_or_path, studies_dir)
    if not path.exists():
        known = sorted(p.stem for p in studies_dir.glob("*.yaml")) if studies_dir.is_dir() else []
        raise UserError(
            f"study file {str(path)!r} does not exist; expected one of {known} "
            "or a path to a .yaml file"
        )
    return parse_spec(read_yaml(path), str(path))
