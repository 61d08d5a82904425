"""``tuner dashboard``: optuna-dashboard over the study's storage, checked in a real Chromium.

The browser test runs the smoke study, starts the dashboard as a user would
(``tuner dashboard``, which ``make dashboard`` runs), opens the study page in
headless Chromium and checks what a person would look for: the study name, the
number of trials, the best value and the optimization-history plot; then the
best trial's page, where its model artifact is listed and downloads. The
screenshots land in test-artifacts/.
"""

from __future__ import annotations

import queue
import re
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from browser_support import chromium, require_browser, screenshot, wait_for
from support import run_cli, spawn_cli

from tuner.cli import main
from tuner.storage.record import TrialAttr

START_TIMEOUT = 60.0


class RunningDashboard:
    def __init__(self, proc: subprocess.Popen, url: str, banner: list[str]) -> None:
        self.proc, self.url, self.banner = proc, url, banner


def _pump(stream, q: queue.Queue) -> None:
    for line in stream:
        q.put(line)
    q.put(None)


@pytest.fixture
def dashboard(runs: Path) -> Iterator[RunningDashboard]:
    """``tuner dashboard --port 0`` (a free port), up and answering, stopped afterwards."""
    proc = spawn_cli("dashboard", "--port", "0", runs_path=runs)
    out: queue.Queue = queue.Queue()
    err: list[str] = []
    threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True).start()
    banner: list[str] = []
    url = None
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while url is None:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"dashboard did not start in {START_TIMEOUT:.0f}s: {banner}")
            try:
                line = out.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                proc.wait(timeout=10)
                pytest.fail(
                    f"dashboard exited with {proc.returncode} before serving: {''.join(err)}"
                )
            banner.append(line.rstrip())
            m = re.search(r"Open (http://127\.0\.0\.1:\d+/dashboard/)", line)
            if m:
                url = m.group(1)
        wait_for(
            "the dashboard's API", lambda: urllib.request.urlopen(url, timeout=5).status == 200
        )
        yield RunningDashboard(proc, url, banner)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _history_points(driver) -> int:
    """Markers in the dashboard's optimization-history plot (one per trial shown)."""
    return driver.execute_script(
        """
        const card = Array.from(document.querySelectorAll('.MuiCard-root'))
            .find(c => c.innerText.trim().startsWith('History'));
        const plot = card && card.querySelector('.js-plotly-plot');
        if (!plot || !plot.data || !plot.querySelector('svg.main-svg')) return -1;
        return plot.data.filter(t => t.mode === 'markers' && /^Objective/.test(t.name))
            .reduce((n, t) => n + (t.x || []).length, 0);
        """
    )


@pytest.mark.browser
def test_dashboard_shows_the_study_and_its_artifacts(runs: Path, request) -> None:
    require_browser()
    tuned = run_cli("tune", "smoke", "--worker-index", "0", runs_path=runs)
    assert tuned.returncode == 0, tuned.stderr
    storage = f"sqlite:///{runs / 'optuna.db'}"
    study = optuna.load_study(study_name="smoke", storage=storage)
    trials = study.get_trials()
    best = study.best_trial
    study_id = study._study_id
    artifact_id = best.user_attrs[TrialAttr.MODEL_ARTIFACT_ID]

    dash = request.getfixturevalue("dashboard")
    assert any(f"studies/{study_id}" in line for line in dash.banner), dash.banner

    with chromium(runs.parent / "chromium-profile", height=2000) as driver:
        driver.get(f"{dash.url}studies/{study_id}")
        wait_for(
            "the study name in the header",
            lambda: "smoke" in driver.title + driver.find_element("tag name", "header").text,
        )
        wait_for(
            "the best trial card",
            lambda: (
                f"Best Trial (number={best.number})" in driver.find_element("tag name", "body").text
            ),
        )
        body = driver.find_element("tag name", "body").text
        assert f"smoke (id={study_id})" in body
        assert "History" in body
        # The best value, as the dashboard prints it (JavaScript's shortest round trip).
        assert repr(best.value) in body, f"best value {best.value!r} not on the page"
        # The optimization-history plot is drawn, with one marker per trial
        # (completed and pruned: the page includes pruned trials by default).
        points = wait_for(
            "the optimization-history plot",
            lambda: _history_points(driver) > 0 and _history_points(driver),
        )
        assert points == len(trials), f"history plot shows {points} trials, study has {len(trials)}"
        time.sleep(1.0)  # let plotly finish its transitions before the picture
        shot = screenshot(driver, "dashboard_study.png")
        assert shot.stat().st_size > 20_000

        # The trials page: the count of trials and the best trial's model artifact.
        driver.get(f"{dash.url}studies/{study_id}/trials?numbers={best.number}")
        wait_for(
            f"'{len(trials)} Trials' on the trial list",
            lambda: f"{len(trials)} Trials" in driver.find_element("tag name", "body").text,
        )
        filename = f"smoke_trial_{best.number:04d}.zip"
        link = wait_for(
            "the artifact's download link",
            lambda: driver.find_elements("css selector", f'a[download="{filename}"]'),
        )[0]
        href = link.get_attribute("href")
        assert href.endswith(f"/artifacts/{study_id}/{best._trial_id}/{artifact_id}"), href
        assert filename in driver.find_element("tag name", "body").text
        time.sleep(0.5)
        screenshot(driver, "dashboard_trial_artifacts.png")

    # The link downloads the very file the trial uploaded.
    with urllib.request.urlopen(href, timeout=10) as resp:
        assert resp.status == 200
        downloaded = resp.read()
    assert downloaded == (runs / "artifacts" / artifact_id).read_bytes()
    assert downloaded[:2] == b"PK"  # an SB3 zip


def test_dashboard_port_in_use_is_a_clear_error(runs: Path, capsys) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        assert main(["dashboard", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "--port" in err


@pytest.mark.postgres  # psycopg2 connects, to a port where no server listens
def test_dashboard_unreachable_storage_is_a_clear_error(runs: Path, monkeypatch, capsys) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("KALAHA_CONNECT_ATTEMPTS", "1")
    url = f"postgresql+psycopg2://nobody@127.0.0.1:{port}/none"
    assert main(["dashboard", "--port", "0", "--storage", url]) == 2
    assert "cannot reach the postgresql storage" in capsys.readouterr().err
