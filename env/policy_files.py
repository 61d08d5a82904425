"""Model files that cannot run code: the policy's weights plus metadata the project writes.

Why: SB3's ``load`` unpickles the ``data`` entry of a ``.zip`` (cloudpickle), so a
planted or downloaded model file runs whatever code it carries the moment it is
loaded: by ``tuner evaluate``, by every worker of a study with a ``policy:FILE``
opponent. The project saves every model it loads, so it can load them safely.

:func:`save_model` writes SB3's usual ``.zip`` (so ``MaskablePPO.load`` still works
for a file you trust, to continue training) and adds one JSON entry,
``kalaha_policy.json``, that names how the policy network is built: layer sizes,
an activation and a features extractor, each by a name from an allow-list below.
:func:`load_policy` reads only that entry and the ``policy.pth`` weights (with
``torch.load(weights_only=True)``, which refuses pickled objects), rebuilds the
``MaskableActorCriticPolicy`` and never touches the pickled entries. A file
without the metadata is refused, unless the caller passes ``trust_pickle=True``
(SB3's own loader, for files from a source you trust).

The metadata also says what the network reads: ``observation_shape`` and the
features extractor (``PrecomputedLookahead``: the counts and the lookahead
features; anything else: the 14 counts), which
``env.networks.expected_observation`` turns into the observations a policy
opponent builds. A file saved before the features moved into the env names
``Lookahead`` (features computed in the forward pass): it is loaded as the same
network reading precomputed features, with the same weights (see :func:`_upgraded`).

torch and sb3-contrib are imported inside the functions, so that the study-file
checks can read :data:`ACTIVATIONS` without loading torch.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from env.options import DEFAULT_STONES

FORMAT = "kalaha-tuner/policy/v1"
META_ENTRY = "kalaha_policy.json"
WEIGHTS_ENTRY = "policy.pth"
# Generous bounds for a policy of this game (a few MB at most); a file beyond them is
# refused before anything is read into memory.
MAX_META_BYTES = 64 * 1024
MAX_WEIGHTS_BYTES = 512 * 1024 * 1024
MAX_LAYERS = 16
MAX_WIDTH = 8192
# The network a file describes is built only when it holds at most this many parameters
# (64 MB of float32; the shipped agents hold under a million), and only after its shapes
# were matched against the weights' on torch's "meta" device, which allocates nothing.
MAX_PARAMETERS = 16_000_000
LOOKAHEAD_PLIES = (1, 2)

# Activation names a study may use -> their torch.nn class name. The one table of
# activations: the study schema checks names against it, the model builder and the
# loader of model files look classes up in it.
ACTIVATIONS = {
    "tanh": "Tanh",
    "relu": "ReLU",
    "elu": "ELU",
    "leaky_relu": "LeakyReLU",
    "gelu": "GELU",
    "silu": "SiLU",
}
# Features extractors a model file may name (SB3's default and env/networks.py's), with
# the keyword arguments each may be rebuilt with (types checked on load).
EXTRACTOR_KWARGS = {
    "FlattenExtractor": set(),
    "SharedTrunk": {"hidden"},
    "Lookahead": {"plies", "stones", "empty_capture", "hidden"},
    "PrecomputedLookahead": {"plies", "stones", "empty_capture", "hidden"},
}
LOOKAHEAD_EXTRACTORS = ("Lookahead", "PrecomputedLookahead")
FEATURES_EXTRACTORS = tuple(EXTRACTOR_KWARGS)
TRUST_HINT = (
    "load it only if you trust where it came from, with --trust-pickle "
    "(SB3's loader unpickles the file, which can run code)"
)


class PolicyFileError(ValueError):
    """A model file that is missing, unreadable or not one the project wrote."""


def activation_class(torch_name: str) -> type:
    """``"Tanh"`` -> ``torch.nn.Tanh``, for allow-listed activations only."""
    from torch import nn

    if torch_name not in ACTIVATIONS.values():
        raise PolicyFileError(
            f"activation_fn: expected one of {sorted(ACTIVATIONS.values())}, but got {torch_name!r}"
        )
    return getattr(nn, torch_name)


def _extractor_class(name: str) -> type:
    if name != "FlattenExtractor":
        from env import networks

        return getattr(networks, name)
    from stable_baselines3.common.torch_layers import FlattenExtractor

    return FlattenExtractor


def policy_metadata(policy: Any) -> dict[str, Any]:
    """A ``MaskableActorCriticPolicy`` -> the JSON-safe description that rebuilds it."""
    extractor = policy.features_extractor_class.__name__
    activation = policy.activation_fn.__name__
    if extractor not in FEATURES_EXTRACTORS or activation not in ACTIVATIONS.values():
        raise PolicyFileError(
            f"cannot save a policy with features extractor {extractor!r} and activation "
            f"{activation!r}: expected one of {list(FEATURES_EXTRACTORS)} and "
            f"{sorted(ACTIVATIONS.values())}"
        )
    obs = policy.observation_space
    return {
        "format": FORMAT,
        "observation_shape": [int(n) for n in obs.shape],
        "observation_low": float(obs.low.min()),
        "observation_high": float(obs.high.max()),
        "n_actions": int(policy.action_space.n),
        "net_arch": json.loads(json.dumps(policy.net_arch)),
        "activation_fn": activation,
        "ortho_init": bool(policy.ortho_init),
        "share_features_extractor": bool(policy.share_features_extractor),
        "normalize_images": bool(policy.normalize_images),
        "features_extractor": extractor,
        "features_extractor_kwargs": json.loads(json.dumps(policy.features_extractor_kwargs)),
    }


def save_model(model: Any, path: str | Path) -> Path:
    """Save a MaskablePPO model as SB3 does, plus the metadata :func:`load_policy` reads.

    The TensorBoard folder is left out: it is where the run that wrote the file logged, a
    path of that machine, and a run that loads the file sets its own.
    """
    path = Path(path)
    if path.suffix == "":
        path = Path(f"{path}.zip")  # where SB3 would write it
    meta = policy_metadata(model.policy)
    model.save(path, exclude=["tensorboard_log"])
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(META_ENTRY, json.dumps(meta, indent=1))
    return path


def _layers(value: Any, where: str) -> list[int]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_LAYERS
        or not all(isinstance(w, int) and not isinstance(w, bool) for w in value)
        or not all(1 <= w <= MAX_WIDTH for w in value)
    ):
        raise PolicyFileError(
            f"{where}: expected a list of at most {MAX_LAYERS} layer widths 1..{MAX_WIDTH}, "
            f"but got {value!r}"
        )
    return list(value)


def _upgrade_meta(meta: Any) -> Any:
    """Metadata written before stones per pit were called stones: the lookahead features'
    ``seeds`` is their ``stones`` (the committed selfplay agent has it)."""
    if not isinstance(meta, dict) or meta.get("features_extractor") not in LOOKAHEAD_EXTRACTORS:
        return meta
    kwargs = meta.get("features_extractor_kwargs")
    if not isinstance(kwargs, dict) or "seeds" not in kwargs or "stones" in kwargs:
        return meta
    kwargs = {("stones" if k == "seeds" else k): v for k, v in kwargs.items()}
    return {**meta, "features_extractor_kwargs": kwargs}


def _check_meta(meta: Any) -> dict[str, Any]:
    """Every field of the metadata, type-checked; nothing in it is ever executed."""
    from env.rules import N_PITS

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise PolicyFileError(f"{META_ENTRY}: expected format {FORMAT!r}, but got {found!r}")
    expected = {
        "format",
        "observation_shape",
        "observation_low",
        "observation_high",
        "n_actions",
        "net_arch",
        "activation_fn",
        "ortho_init",
        "share_features_extractor",
        "normalize_images",
        "features_extractor",
        "features_extractor_kwargs",
    }
    if set(meta) != expected:
        raise PolicyFileError(
            f"{META_ENTRY}: expected the keys {sorted(expected)}, but got {sorted(meta)}"
        )
    for key in ("observation_low", "observation_high"):
        if not isinstance(meta[key], int | float) or not math.isfinite(meta[key]):
            raise PolicyFileError(f"{META_ENTRY}: {key}: expected a number, got {meta[key]!r}")
    for key in ("ortho_init", "share_features_extractor", "normalize_images"):
        if not isinstance(meta[key], bool):
            raise PolicyFileError(f"{META_ENTRY}: {key}: expected true/false, got {meta[key]!r}")
    _check_net_arch(meta["net_arch"])
    activation_class(meta["activation_fn"])
    extractor, kwargs = meta["features_extractor"], meta["features_extractor_kwargs"]
    _check_features_extractor(extractor, kwargs)
    problem = _lookahead_problem(kwargs)
    if problem:
        raise PolicyFileError(problem)
    size = observation_of(meta).size
    if meta["observation_shape"] != [size] or meta["n_actions"] != N_PITS:
        raise PolicyFileError(
            f"{META_ENTRY}: expected a Kalah policy ({size} observations for a {extractor} "
            f"network, {N_PITS} actions), but got {meta['observation_shape']!r} and "
            f"{meta['n_actions']!r}"
        )
    return meta


def _check_net_arch(arch: Any) -> None:
    """``net_arch``: a list of layer widths, or one per head (``pi``, ``vf``)."""
    if isinstance(arch, dict):
        if set(arch) - {"pi", "vf"}:
            raise PolicyFileError(f"net_arch: expected keys pi and vf, but got {sorted(arch)}")
        for head, layers in arch.items():
            _layers(layers, f"net_arch.{head}")
    else:
        _layers(arch, "net_arch")


def _check_features_extractor(extractor: Any, kwargs: Any) -> None:
    """One of the known extractors, with only the keyword arguments it takes, well typed."""
    if extractor not in FEATURES_EXTRACTORS:
        raise PolicyFileError(
            f"features_extractor: expected one of {list(FEATURES_EXTRACTORS)}, but got {extractor!r}"
        )
    allowed = EXTRACTOR_KWARGS[extractor]
    if not isinstance(kwargs, dict) or set(kwargs) - allowed:
        raise PolicyFileError(
            f"features_extractor_kwargs: expected only {sorted(allowed)} for {extractor}, "
            f"but got {kwargs!r}"
        )
    if "hidden" in kwargs:
        _layers(kwargs["hidden"], "features_extractor_kwargs.hidden")
    for key, kind in (("plies", int), ("stones", int), ("empty_capture", bool)):
        if key in kwargs and type(kwargs[key]) is not kind:
            raise PolicyFileError(
                f"features_extractor_kwargs.{key}: expected {kind.__name__}, "
                f"but got {kwargs[key]!r}"
            )


def observation_of(meta: dict[str, Any]) -> Any:
    """The :class:`env.observation.Observation` the network a metadata describes reads."""
    from env.observation import Observation

    kwargs = meta["features_extractor_kwargs"]
    stones = kwargs.get("stones", DEFAULT_STONES)
    if meta["features_extractor"] != "PrecomputedLookahead":
        return Observation(stones)
    return Observation(stones, kwargs.get("plies", 2), kwargs.get("empty_capture", False))


def _upgraded(meta: dict[str, Any]) -> dict[str, Any]:
    """A ``Lookahead`` network's metadata -> the same network reading precomputed features.

    Why: ``Lookahead`` computes the features in its forward pass and has no
    weights of its own (a trunk over the features is named alike in both), so
    the saved weights load unchanged into a ``PrecomputedLookahead`` network, and
    an agent saved before the features moved into the env plays on the same path
    as a new one: its features computed once per ply for all its games, the same
    values bit for bit (tests check both).
    """
    if meta["features_extractor"] != "Lookahead":
        return meta
    new = {**meta, "features_extractor": "PrecomputedLookahead"}
    space = observation_of(new).space()
    return new | {
        "observation_shape": [int(space.shape[0])],
        "observation_low": float(space.low.min()),
        "observation_high": float(space.high.max()),
    }


def _open(path: Path) -> zipfile.ZipFile:
    if not path.exists() and Path(f"{path}.zip").exists():
        path = Path(f"{path}.zip")  # the suffix SB3 adds
    if not path.exists():
        raise PolicyFileError(f"policy file {str(path)!r} does not exist")
    if not path.is_file():
        raise PolicyFileError(f"policy file {str(path)!r} is not a file (a directory?)")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise PolicyFileError(
            f"policy file {str(path)!r} is not a readable .zip model ({err}); "
            "expected a file saved by `tuner train` or a trial's model artifact"
        ) from None


def load_policy(path: str | Path, *, device: str = "cpu", trust_pickle: bool = False) -> Any:
    """A saved model file -> its ``MaskableActorCriticPolicy``, in eval mode.

    Only the metadata (JSON) and the weights (``weights_only=True``) are read.
    Raises :class:`PolicyFileError` with one line for any file it cannot load.
    """
    path = Path(path)
    with _open(path) as zf:
        names = set(zf.namelist())
        if META_ENTRY not in names:
            if not trust_pickle:
                raise PolicyFileError(
                    f"policy file {str(path)!r} has no {META_ENTRY}: it was not saved by "
                    f"kalaha-tuner, so it is not loaded; {TRUST_HINT}"
                )
            return _load_trusted(zf.filename or str(path), device)
        if WEIGHTS_ENTRY not in names:
            raise PolicyFileError(f"policy file {str(path)!r} has no {WEIGHTS_ENTRY} entry")
        meta_info, weights_info = zf.getinfo(META_ENTRY), zf.getinfo(WEIGHTS_ENTRY)
        if meta_info.file_size > MAX_META_BYTES or weights_info.file_size > MAX_WEIGHTS_BYTES:
            raise PolicyFileError(
                f"policy file {str(path)!r}: entries larger than expected "
                f"({META_ENTRY} {meta_info.file_size} bytes, at most {MAX_META_BYTES}; "
                f"{WEIGHTS_ENTRY} {weights_info.file_size} bytes, at most {MAX_WEIGHTS_BYTES})"
            )
        try:
            meta = _check_meta(_upgrade_meta(json.loads(zf.read(META_ENTRY))))
            weights = zf.read(WEIGHTS_ENTRY)
        except (ValueError, zipfile.BadZipFile, OSError, EOFError, RecursionError) as err:
            if isinstance(err, PolicyFileError):
                raise PolicyFileError(f"policy file {str(path)!r}: {err}") from None
            raise PolicyFileError(f"policy file {str(path)!r} is damaged: {err}") from None
    # As the file says (an older Lookahead file's own observation range), then upgraded.
    check_buildable(meta, str(path))
    return _build(_upgraded(meta), weights, device, str(path))


def _build(meta: dict[str, Any], weights: bytes, device: str, source: str) -> Any:
    import numpy as np
    from gymnasium import spaces
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

    def network(policy_class: type = MaskableActorCriticPolicy) -> Any:
        return policy_class(
            spaces.Box(
                low=meta["observation_low"],
                high=meta["observation_high"],
                shape=tuple(meta["observation_shape"]),
                dtype=np.float32,
            ),
            spaces.Discrete(meta["n_actions"]),
            lr_schedule=lambda _: 0.0,
            net_arch=meta["net_arch"],
            activation_fn=activation_class(meta["activation_fn"]),
            ortho_init=meta["ortho_init"],
            features_extractor_class=_extractor_class(meta["features_extractor"]),
            features_extractor_kwargs=meta["features_extractor_kwargs"],
            share_features_extractor=meta["share_features_extractor"],
            normalize_images=meta["normalize_images"],
        )

    state = _load_weights(weights, device, source)
    check_network_size(network, state, source)  # before a single parameter is allocated
    policy = network()
    try:
        policy.load_state_dict(state)
    except Exception as err:  # a tensor of the right shape that does not load
        line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolicyFileError(
            f"policy file {source!r}: its weights do not load into the network its "
            f"metadata describes: {line[:300]}"
        ) from None
    policy.to(device)
    policy.set_training_mode(False)
    return policy


def _plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_buildable(meta: dict[str, Any], source: str) -> None:
    """Every field the builder reads, to what the builder accepts: one line, not a traceback.

    Applied to checked metadata right before the network is built: integer shapes and
    action counts (``14.0`` compares equal to ``14`` but builds no network), an
    observation range with ``low < high``, a non-empty trunk, lookahead plies 1 or 2
    and stones per pit the game allows (``stones: 0`` divides by zero at every move).
    """

    def refuse(what: str) -> NoReturn:
        raise PolicyFileError(f"policy file {source!r}: {META_ENTRY}: {what}")

    shape, n_actions = meta["observation_shape"], meta["n_actions"]
    if not isinstance(shape, list) or not shape or not all(_plain_int(n) for n in shape):
        refuse(f"observation_shape: expected a list of integers, but got {shape!r}")
    if not _plain_int(n_actions):
        refuse(f"n_actions: expected an integer, but got {n_actions!r}")
    low, high = meta["observation_low"], meta["observation_high"]
    if isinstance(low, bool) or isinstance(high, bool) or not low < high:
        refuse(
            f"expected observation_low < observation_high (numbers), but got {low!r} and {high!r}"
        )
    kwargs = meta["features_extractor_kwargs"]
    if meta["features_extractor"] == "SharedTrunk" and not kwargs.get("hidden", [64]):
        refuse("features_extractor_kwargs.hidden: expected at least one layer, but got []")
    problem = _lookahead_problem(kwargs)
    if problem:
        refuse(problem)


def _lookahead_problem(kwargs: dict[str, Any]) -> str | None:
    """What is wrong with the lookahead settings of ``features_extractor_kwargs``, if
    anything: plies 1 or 2, stones per pit the game allows (``stones: 0`` divides by
    zero at every move)."""
    from env.options import MAX_STONES, MIN_STONES

    plies = kwargs.get("plies", LOOKAHEAD_PLIES[-1])
    if plies not in LOOKAHEAD_PLIES or not _plain_int(plies):
        return f"features_extractor_kwargs.plies: expected 1 or 2, but got {plies!r}"
    for key in ("stones", "seeds"):  # seeds: the name in files saved before the rename
        if key in kwargs and (
            not _plain_int(kwargs[key]) or not MIN_STONES <= kwargs[key] <= MAX_STONES
        ):
            return (
                f"features_extractor_kwargs.{key}: expected stones per pit "
                f"{MIN_STONES}..{MAX_STONES}, but got {kwargs[key]!r}"
            )
    return None


def _load_weights(weights: bytes, device: str, source: str) -> dict[str, Any]:
    """The weights as tensors by name (``weights_only``: no pickled object is rebuilt)."""
    import torch

    try:
        state = torch.load(io.BytesIO(weights), map_location=device, weights_only=True)
    except Exception as err:  # unpickling refused, a truncated tensor
        line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolicyFileError(
            f"policy file {source!r}: its weights do not load: {line[:300]}"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise PolicyFileError(
            f"policy file {source!r}: expected its {WEIGHTS_ENTRY} to hold tensors by name, "
            f"but got {type(state).__name__}"
        )
    return state


def check_network_size(network: Callable[[type], Any], state: dict[str, Any], source: str) -> None:
    """The network that ``network(policy_class)`` builds, measured without allocating it: at most
    :data:`MAX_PARAMETERS` parameters, in tensors of the very names and shapes the
    weights hold.

    Why: the metadata is a few bytes of JSON, and a 15 KB file that describes 8192-unit
    layers would otherwise allocate gigabytes before its weights are compared. The
    network is built on torch's ``meta`` device (shapes only, no memory); metadata that
    builds no network at all is refused here too, in one line.
    """
    import torch
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

    class OnMeta(MaskableActorCriticPolicy):
        @property
        def device(self) -> torch.device:  # SB3 moves its MLP to the policy's device
            return torch.device("meta")

    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in network(OnMeta).state_dict().items()}
    except Exception as err:  # anything the builder refuses: one line, not a traceback
        line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PolicyFileError(
            f"policy file {source!r}: its metadata describes no network that can be "
            f"built: {type(err).__name__}: {line[:300]}"
        ) from None
    n_params = sum(math.prod(s) for s in shapes.values())
    if n_params > MAX_PARAMETERS:
        raise PolicyFileError(
            f"policy file {source!r}: expected a network of at most {MAX_PARAMETERS:,} "
            f"parameters, but its metadata describes {n_params:,}"
        )
    held = {k: tuple(v.shape) for k, v in state.items()}
    if held != shapes:
        differ = sorted(set(held) ^ set(shapes)) or sorted(
            k for k in shapes if held[k] != shapes[k]
        )
        first = differ[0]
        raise PolicyFileError(
            f"policy file {source!r}: its weights do not match the network its metadata "
            f"describes: expected {len(shapes)} tensors of {n_params:,} parameters, but "
            f"got {len(held)} of {sum(math.prod(s) for s in held.values()):,} "
            f"({first}: expected {shapes.get(first)}, but got {held.get(first)})"
        )


def _load_trusted(path: str, device: str) -> Any:
    """SB3's own loader: unpickles the file. Only for files the user says they trust."""
    from sb3_contrib import MaskablePPO

    try:
        return MaskablePPO.load(path, device=device).policy
    except Exception as err:
        raise PolicyFileError(f"policy file {path!r} does not load with SB3: {err}") from None
