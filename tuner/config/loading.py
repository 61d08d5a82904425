"""Study file -> validated spec, and the spec stored on a study. The only reader of study YAML.

Reading a study file: the YAML, bounded (:func:`read_yaml`), then the models
(:mod:`tuner.config.spec`), then the checks that touch the world
(:mod:`tuner.config.checks`), then the sampler and pruner built once, so that bad
options fail here, before any storage is opened (:func:`parse_spec`,
:func:`load_spec`).

Reading a study's name (:func:`study_name_in`) reads one key, reading the spec
recorded on a study as data (:func:`stored_spec_data`) builds no models, and
reading it as a spec (:func:`stored_spec`) runs the models only: the file was
checked when the study was created. All stay light (no numba, torch or optuna),
which is what keeps ``tuner status`` and ``tuner report`` quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from tuner.base.errors import UserError, did_you_mean
from tuner.base.settings import DEFAULT_STUDIES
from tuner.config.renamed import RENAMED
from tuner.storage.record import StudyAttr

if TYPE_CHECKING:
    import optuna

    from tuner.config.spec import StudySpec

STUDIES_DIR = DEFAULT_STUDIES  # Settings.studies_dir ($KALAHA_STUDIES) is passed in

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


def resolve_study_path(name_or_path: str | Path, studies_dir: Path = STUDIES_DIR) -> Path:
    """``net_arch`` -> ``studies/net_arch.yaml``; a path is taken as it is."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return studies_dir / f"{p}.yaml"


def study_name_in(path: Path) -> str:
    """The ``study_name`` of a study file: one key read, nothing else checked or imported."""
    data = read_yaml(path)
    name = data.get("study_name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise UserError(f"{path}: key 'study_name' is required but missing")
    return name


def validate_spec(data: Any, source: str) -> StudySpec:
    """The models alone (:mod:`tuner.config.spec`); raise :class:`UserError` on the first problem."""
    # Imported here: reading a study's name or its stored spec as data needs no models.
    from tuner.config.spec import StudySpec, format_error

    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of keys at the top level, but got {data!r}")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as err:
        raise UserError(format_error(source, err)) from None


def parse_spec(data: Any, source: str = "<study>") -> StudySpec:
    """Validate already-loaded YAML data completely; raise :class:`UserError` on the first
    problem: the models, then the checks that touch the world, then the sampler and pruner."""
    spec = validate_spec(data, source)
    # Imported here: they load env (numba), sb3-contrib's signatures and optuna, which
    # reading a spec does not need.
    from tuner.config.checks import check_study
    from tuner.config.samplers import build_pruner, build_sampler

    try:
        check_study(spec)
    except ValueError as err:
        raise UserError(f"{source}: {err}") from None
    try:  # built once now: bad options fail here, before storage
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
            f"study file {str(path)!r} does not exist;{did_you_mean(str(name_or_path), known)} "
            f"expected one of {known} or a path to a .yaml file"
        )
    return parse_spec(read_yaml(path), str(path))


# --- the spec stored on a study ---------------------------------------------------------


def upgrade_stored_spec(data: Any) -> Any:
    """A spec recorded on a study by an earlier version, in today's schema.

    A study file with an old key is an error (its author can fix it); a study in a
    database is history, so its recorded spec is read in the new form rather than
    refused:

    - Before the rating objective, ``evaluation.objective: final|best`` said which
      evaluation became the value; that is ``value_from`` now.
    - Words with two meanings were renamed (``RENAMED``): ``env.seeds`` (stones per
      pit) is ``env.stones``, ``budget.seeds`` (training runs per trial) is
      ``budget.runs``, and a searched ``seeds`` is ``stones``.
    """
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for old, (new, _) in RENAMED.items():
        section, _, key = old.partition(".")
        part = data.get(section)
        if isinstance(part, dict) and key in part and new.partition(".")[2] not in part:
            data[section] = {(new.partition(".")[2] if k == key else k): v for k, v in part.items()}
    evaluation = data.get("evaluation")
    if isinstance(evaluation, dict) and evaluation.get("objective") in ("final", "best"):
        evaluation = dict(evaluation)
        evaluation["value_from"] = evaluation.pop("objective")
        evaluation["objective"] = "score"
        data["evaluation"] = evaluation
    return data


def stored_spec_data(study: optuna.Study) -> dict[str, Any]:
    """The spec recorded on ``study`` as data, in today's schema; ``{}`` when none was.

    The one reader of the recorded spec: what needs it checked reads :func:`stored_spec`;
    what can live with part of it (the report) reads the data.
    """
    data = upgrade_stored_spec(study.user_attrs.get(StudyAttr.SPEC))
    return data if isinstance(data, dict) else {}


def stored_spec(study: optuna.Study) -> StudySpec | None:
    """The spec ``study`` was created with, validated by the models; ``None`` when no spec
    was recorded (a study made outside the tuner). The file was checked against the
    world when the study was created, so no check here loads env or sb3-contrib."""
    data = stored_spec_data(study)
    return validate_spec(data, f"study {study.study_name!r}") if data else None


def spec_of(study: optuna.Study, studies_dir: Path = STUDIES_DIR) -> StudySpec:
    """The spec a study's trials ran with: the one recorded on it, else its study file."""
    return stored_spec(study) or load_spec(study.study_name, studies_dir)
