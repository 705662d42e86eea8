"""Headless Chromium (Debian's chromium and chromium-driver, installed by `make setup`) driven
by Selenium, for tests that look at a page as a person would, and the helpers they share."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "dashboard"  # screenshots the tests keep
PATIENCE = 60.0  # seconds a test waits for the page to show something

# Chromium on its own would talk to Google's services (updates, safe browsing, metrics): a test
# browser talks to the page under test only.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-domain-reliability", "--metrics-recording-only",
         "--disable-client-side-phishing-detection", "--disable-features=Translate,OptimizationHints,MediaRouter",
         "--hide-scrollbars", "--lang=en-US")


def _tool(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if path:
            return path
    raise RuntimeError(f"{' or '.join(names)} is not installed: `make setup` installs Debian's "
                       "chromium and chromium-driver")


@contextmanager
def chromium(width: int = 1000, height: int = 900) -> Iterator[Any]:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = _tool("chromium", "chromium-browser")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    service = webdriver.ChromeService(executable_path=_tool("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, look: Callable[[Any], Any], what: str) -> Any:
    """What `look(driver)` gives once it gives something; the page redraws as it polls, so an
    element found a moment ago may be gone: `look` is simply asked again."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, PATIENCE, poll_frequency=0.1,
                         ignored_exceptions=(NoSuchElementException,
                                             StaleElementReferenceException)).until(
        look, f"the page never showed {what}")


def look(driver: Any, read: Callable[[Any], Any]) -> Any:
    """What `read(driver)` gives, read again if the page redrew the elements meanwhile."""
    return wait_for(driver, lambda d: (read(d),), "the elements read")[0]


def screenshot(driver: Any, name: str) -> Path:
    """The whole page (not only the window's part of it), as build/dashboard/NAME.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    size = "const e = document.documentElement; return [e.scrollWidth, e.scrollHeight];"
    width, height = driver.execute_script(size)
    try:
        for _ in range(2):  # the page laid out again at its full height may be taller still
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            width, height = driver.execute_script(size)
        driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path
