"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by selenium.

``.ci/run`` installs both packages. Without them a developer's run skips the
browser tests with the install command; under CI (``CI`` set) it fails instead,
so a green CI always means the browser really ran.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from support import REPO_ROOT

CHROMIUM = os.environ.get("KALAHA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("KALAHA_CHROMEDRIVER", "/usr/bin/chromedriver")
TEST_ARTIFACTS = REPO_ROOT / "test-artifacts"

# Headless, no sandbox (root in a container), and nothing that phones home.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        message = (
            f"browser test needs {', '.join(missing)}; "
            "install with `apt-get install -y chromium chromium-driver` (as .ci/run does)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def chromium(profile_dir: Path, width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A fresh headless Chromium with its own profile folder; quit on exit."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager: no usage stats
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--window-size={width},{height}"]:
        options.add_argument(flag)
    profile_dir.mkdir(parents=True, exist_ok=True)
    options.add_argument(f"--user-data-dir={profile_dir}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 45.0, interval: float = 0.25
) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as err:  # the page may still be rendering
            last = err
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def screenshot(driver: Any, name: str) -> Path:
    """Save a screenshot under test-artifacts/ (git-ignored) and return its path."""
    TEST_ARTIFACTS.mkdir(exist_ok=True)
    path = TEST_ARTIFACTS / name
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    return path
