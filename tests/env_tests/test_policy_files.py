"""Model files that cannot run code: weights plus JSON metadata, and the refusals.

The payload tests plant a pickled ``os.system`` call in a model file's ``data``
entry, the way a hostile file would, and check that the project's loader never
runs it, while SB3's own loader does (so the payload is real).
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO
from support import run_cli

from env.kalaha_env import KalahaEnv
from env.opponents import PolicyOpponent, make_opponent
from env.policy_files import META_ENTRY, WEIGHTS_ENTRY, PolicyFileError, load_policy, save_model
from env.rules import BOARD_DTYPE, initial_board


class Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def tiny(lookahead: int = 0, **policy_kwargs) -> MaskablePPO:
    return MaskablePPO(
        "MlpPolicy",
        KalahaEnv(lookahead=lookahead),
        n_steps=32,
        batch_size=32,
        policy_kwargs={"net_arch": [8], **policy_kwargs},
        device="cpu",
        seed=0,
    )


def positions(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    boards = np.tile(np.asarray(initial_board(4), dtype=BOARD_DTYPE), (n, 1))
    boards[:, :6] = rng.integers(0, 6, size=(n, 6))
    boards[:, 7:13] = rng.integers(1, 6, size=(n, 6))
    return boards, np.tile([0, 1], n // 2).astype(np.int64)


def rewrite(path: Path, out: Path, replace: dict[str, bytes | None]) -> Path:
    """Copy a zip with some entries replaced (or dropped, for ``None``)."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename in replace:
                continue
            dst.writestr(info, src.read(info.filename))
        for name, data in replace.items():
            if data is not None:
                dst.writestr(name, data)
    return out


def plant_payload(path: Path, out: Path, marker: Path) -> Path:
    """The model's ``data`` entry with its ``lr_schedule`` swapped for the payload."""
    with zipfile.ZipFile(path) as zf:
        data = json.loads(zf.read("data"))
    data["lr_schedule"][":serialized:"] = base64.b64encode(pickle.dumps(Payload(marker))).decode()
    return rewrite(path, out, {"data": json.dumps(data).encode()})


@pytest.mark.parametrize(
    "policy_kwargs",
    [
        {},
        {"net_arch": {"pi": [8], "vf": [16, 4]}, "activation_fn": torch.nn.ReLU},
        {
            "features_extractor_class": __import__(
                "env.networks", fromlist=["SharedTrunk"]
            ).SharedTrunk,
            "features_extractor_kwargs": {"hidden": [12]},
            "share_features_extractor": True,
            "activation_fn": torch.nn.GELU,
            "ortho_init": False,
        },
        {
            "features_extractor_class": __import__(
                "env.networks", fromlist=["Lookahead"]
            ).Lookahead,
            "features_extractor_kwargs": {"plies": 2, "stones": 4, "hidden": [16]},
            "share_features_extractor": True,
        },
        {
            "lookahead": 1,
            "features_extractor_class": __import__(
                "env.networks", fromlist=["PrecomputedLookahead"]
            ).PrecomputedLookahead,
            "features_extractor_kwargs": {"plies": 1, "stones": 4, "hidden": [16]},
            "share_features_extractor": False,
        },
    ],
    ids=["default", "split-relu", "shared-trunk", "lookahead-trunk", "precomputed-split"],
)
def test_a_saved_policy_loads_from_metadata_and_plays_as_the_model(
    tmp_path, one_torch_thread, policy_kwargs
):
    model = tiny(**policy_kwargs)
    path = save_model(model, tmp_path / "agent")  # SB3 adds the suffix; so does save_model
    assert path == tmp_path / "agent.zip"
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read(META_ENTRY))
    json.dumps(meta)  # plain JSON: names and numbers, no classes
    policy = load_policy(path)
    for name, p in model.policy.state_dict().items():
        torch.testing.assert_close(policy.state_dict()[name], p)
    boards, players = positions()
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(
        PolicyOpponent(policy).act(boards, players, rng),
        PolicyOpponent(model).act(boards, players, rng),
    )
    # SB3 can still load the file (to continue training a model you trust).
    assert MaskablePPO.load(path, device="cpu").n_steps == 32


def test_a_saved_model_holds_no_path_of_the_machine_that_wrote_it(tmp_path, one_torch_thread):
    model = tiny()
    model.tensorboard_log = str(tmp_path / "logs" / "study")  # as a trial's run sets it
    path = save_model(model, tmp_path / "agent.zip")
    with zipfile.ZipFile(path) as zf:
        data = zf.read("data").decode()
    assert "tensorboard_log" not in json.loads(data)
    assert str(tmp_path) not in data
    loaded = MaskablePPO.load(path, device="cpu")  # SB3 still loads it: no log folder
    assert loaded.tensorboard_log is None


@pytest.mark.slow
def test_a_planted_payload_never_runs(tmp_path, one_torch_thread):
    """The payload runs under SB3's loader, and not under the project's, nor the CLI's."""
    good = save_model(tiny(), tmp_path / "good.zip")
    marker = tmp_path / "pwned"
    evil = plant_payload(good, tmp_path / "evil.zip", marker)

    MaskablePPO.load(evil, device="cpu")  # the payload is real: SB3 unpickles it
    assert marker.exists()
    marker.unlink()

    load_policy(evil)
    make_opponent(f"policy:{evil}")
    KalahaEnv(opponent=f"policy:{evil}")
    runs = tmp_path / "runs"
    result = run_cli("evaluate", str(evil), "--opponents", "random", "--games", "4", runs_path=runs)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()

    # A file without the project's metadata is refused, with the way out named.
    bare = rewrite(evil, tmp_path / "bare.zip", {META_ENTRY: None})
    result = run_cli("evaluate", str(bare), "--opponents", "random", runs_path=runs)
    assert result.returncode == 2
    assert "has no kalaha_policy.json" in result.stderr and "--trust-pickle" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    # ... and loaded the old way only when the user says they trust it.
    result = run_cli(
        "evaluate", str(bare), "--trust-pickle", "--opponents", "random", "--games", "4",
        runs_path=runs,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert marker.exists()


def test_pickled_weights_and_metadata_outside_the_allow_list_are_refused(
    tmp_path, one_torch_thread
):
    good = save_model(tiny(), tmp_path / "good.zip")
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"weights": Payload(marker)}, buf)  # a pickle where tensors should be
    with pytest.raises(PolicyFileError, match="weights do not load"):
        load_policy(rewrite(good, tmp_path / "w.zip", {WEIGHTS_ENTRY: buf.getvalue()}))
    assert not marker.exists()

    with zipfile.ZipFile(good) as zf:
        meta = json.loads(zf.read(META_ENTRY))
    for key, value, message in [
        ("activation_fn", "os.system", "activation_fn: expected one of"),
        ("features_extractor", "builtins.eval", "features_extractor: expected one of"),
        ("features_extractor_kwargs", {"cmd": "ls"}, "features_extractor_kwargs"),
        ("net_arch", [10**9], "layer widths"),
        ("n_actions", 7, "expected a Kalah policy"),
        ("observation_shape", [128], r"expected a Kalah policy \(14 observations"),
        (
            "features_extractor",
            "PrecomputedLookahead",
            r"\(128 observations for a PrecomputedLookahead",
        ),
        ("format", "other", "expected format"),
    ]:
        bad = rewrite(
            good, tmp_path / f"{key}.zip", {META_ENTRY: json.dumps({**meta, key: value}).encode()}
        )
        with pytest.raises(PolicyFileError, match=message):
            load_policy(bad)


@pytest.mark.slow
def test_missing_truncated_and_directory_model_files_are_one_line_errors(tmp_path):
    good = save_model(tiny(), tmp_path / "good.zip")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[:300])
    (tmp_path / "folder.zip").mkdir()
    cases = {
        tmp_path / "nosuch.zip": "does not exist",
        truncated: "is not a readable .zip model",
        tmp_path / "folder.zip": "is not a file",
    }
    for path, message in cases.items():
        with pytest.raises(PolicyFileError, match=message):
            load_policy(path)
        result = run_cli("evaluate", str(path), runs_path=tmp_path / "runs")
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_a_model_saved_before_stones_were_called_stones_still_loads():
    """The committed selfplay agent names its lookahead's stones per pit ``seeds``, in its
    metadata and in SB3's pickled settings: both loaders still build it, with 4 stones."""
    path = Path(__file__).resolve().parents[2] / "studies" / "best" / "selfplay.zip"
    with zipfile.ZipFile(path) as zf:
        assert json.loads(zf.read(META_ENTRY))["features_extractor_kwargs"]["seeds"] == 4
    policy = load_policy(path)
    assert policy.features_extractor.stones == 4
    trusted = MaskablePPO.load(path, device="cpu").policy
    assert trusted.features_extractor.stones == 4
    boards, players = positions()
    agent = PolicyOpponent(policy)
    pits = agent.act(boards, players, np.random.default_rng(0))
    assert (pits == PolicyOpponent(trusted).act(boards, players, np.random.default_rng(0))).all()


def _with_meta(good: Path, out: Path, **changes) -> Path:
    with zipfile.ZipFile(good) as zf:
        meta = json.loads(zf.read(META_ENTRY))
    return rewrite(good, out, {META_ENTRY: json.dumps({**meta, **changes}).encode()})


@pytest.mark.parametrize(
    ("net_arch", "message"),
    [
        ([4096, 4096, 4096], "expected a network of at most 16,000,000 parameters"),
        ({"pi": [8192] * 4, "vf": [8]}, "expected a network of at most 16,000,000 parameters"),
        ([1024, 1024], "do not match the network its metadata describes"),
    ],
    ids=["4096-units", "8192-units", "under-the-cap"],
)
def test_metadata_of_a_large_network_is_refused_before_its_layers_are_allocated(
    tmp_path, one_torch_thread, monkeypatch, net_arch, message
):
    """A file of a few KB whose metadata names wide layers: refused on shapes alone, no
    layer of that width ever holding memory (the weights hold 8 units a layer)."""
    good = save_model(tiny(), tmp_path / "good.zip")
    bad = _with_meta(good, tmp_path / "wide.zip", net_arch=net_arch)
    allocated: list[tuple[int, str]] = []
    linear_init = torch.nn.Linear.__init__

    def spy(self, *args, **kwargs):
        linear_init(self, *args, **kwargs)
        allocated.append((self.out_features, self.weight.device.type))

    monkeypatch.setattr(torch.nn.Linear, "__init__", spy)
    with pytest.raises(PolicyFileError, match=message):
        load_policy(bad)
    assert [n for n, device in allocated if n >= 1024 and device != "meta"] == []
    with pytest.raises(ValueError, match=message):  # a policy: opponent, as at create
        make_opponent(f"policy:{bad}")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"features_extractor_kwargs": {"plies": 3, "stones": 4}}, "plies: expected 1 or 2"),
        ({"features_extractor_kwargs": {"plies": 2, "stones": 0}}, "stones per pit 1..12"),
        ({"features_extractor_kwargs": {"plies": 2, "seeds": 99}}, "stones per pit 1..12"),
        ({"observation_low": 20.0}, "expected observation_low < observation_high"),
        ({"observation_shape": [14.0]}, "observation_shape: expected a list of integers"),
        ({"n_actions": 6.0}, "n_actions: expected an integer"),
        (
            {"features_extractor": "SharedTrunk", "features_extractor_kwargs": {"hidden": []}},
            "hidden: expected at least one layer",
        ),
    ],
    ids=["plies", "stones", "seeds", "low-high", "float-shape", "float-actions", "empty-trunk"],
)
def test_metadata_the_builder_refuses_is_one_line(tmp_path, one_torch_thread, changes, message):
    """Metadata that passes the field checks but builds no network: one line, no traceback."""
    lookahead = tiny(
        features_extractor_class=__import__("env.networks", fromlist=["Lookahead"]).Lookahead,
        features_extractor_kwargs={"plies": 2, "stones": 4},
        share_features_extractor=True,
    )
    good = save_model(lookahead, tmp_path / "good.zip")
    bad = _with_meta(good, tmp_path / "bad.zip", **changes)
    with pytest.raises(PolicyFileError, match=message):
        load_policy(bad)


def test_deeply_nested_metadata_is_one_line(tmp_path, capsys, one_torch_thread):
    from tuner.cli import main

    good = save_model(tiny(), tmp_path / "good.zip")
    nested = rewrite(good, tmp_path / "nested.zip", {META_ENTRY: b"[" * 30000 + b"]" * 30000})
    with pytest.raises(PolicyFileError, match="is damaged"):
        load_policy(nested)
    assert main(["evaluate", str(nested), "--games", "2", "--opponents", "random"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: policy file") and err.count("\n") == 1
