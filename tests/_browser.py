"""Headless Debian chromium driven by selenium, for the web page's tests.

`Browser` wraps one chromedriver session: `login(node)` asks the node for a
one-time login link with its bearer token and opens it (the page trades it
for an HttpOnly cookie); `go(node, "bounty/<id>")` opens a view; every wait is
a condition with a generous bound (a loaded 2-core machine), never a sleep.

Cookies ignore ports, so one browser holds one node's session at a time:
`login` to another node replaces it (the page shows the login screen on the
node whose session is gone).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from _nodes import Node
from selenium import webdriver
from selenium.common.exceptions import (
    JavascriptException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

__all__ = ["ARTIFACTS", "CHROMEDRIVER", "CHROMIUM", "WAIT", "Browser"]

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 90.0  # seconds: any condition on a loaded 2-core machine
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DESKTOP = (1280, 900)
PHONE = (390, 844)


def _options() -> Options:
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--password-store=basic",
        "--lang=en-US",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return opts


class Browser:
    """One headless chromium, and the steps the page tests take with it."""

    def __init__(self) -> None:
        for path in (CHROMIUM, CHROMEDRIVER):
            if not Path(path).exists():
                raise AssertionError(
                    f"{path} is missing: install Debian's chromium and chromium-driver "
                    "(`apt-get install chromium chromium-driver`; .ci/run does it)"
                )
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=_options())
        self.driver.set_page_load_timeout(WAIT)
        self.driver.set_script_timeout(WAIT)
        self.node: Node | None = None
        self.downloads = Path(tempfile.mkdtemp(prefix="lm-downloads-"))
        self.driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(self.downloads)},
        )

    def close(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.downloads, ignore_errors=True)

    def downloaded(self, name: str) -> bytes:
        """Wait for a finished download called `name`; its bytes."""
        path = self.downloads / name
        self.wait(
            lambda: path.exists() and not any(self.downloads.glob("*.crdownload")),
            f"the download {name} (have {sorted(p.name for p in self.downloads.iterdir())})",
        )
        return path.read_bytes()

    # -- waiting -----------------------------------------------------------------------

    def wait(self, check: Callable[[], T], what: str, timeout: float = WAIT) -> T:
        """Until `check()` is truthy (an element that went stale or is not there
        yet counts as "not yet"); fail with `what` and what the page shows."""
        try:
            return WebDriverWait(
                self.driver,
                timeout,
                poll_frequency=0.2,
                ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
            ).until(lambda _d: check())
        except TimeoutException:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}\n"
                f"url: {self.driver.current_url}\npage: {self.main_text()[:3000]}\n"
                f"console: {self.console()[-10:]}"
            ) from None

    def wait_text(self, text: str, css: str = "main", timeout: float = WAIT) -> None:
        self.wait(lambda: text in self.find(css).text, f"{text!r} in {css}", timeout)

    # -- pages -------------------------------------------------------------------------

    def login(self, node: Node) -> None:
        """Open a fresh one-time login link from the node (made with its bearer token)."""
        link = node.post("/api/login-link")["url"]
        assert "#login=" in link, link
        # From a blank page, so that the link is a page load of its own and the
        # page that was there cannot answer the waits below (a link opened in
        # the open page is a hashchange: test_web_security tests that path).
        self.driver.get("about:blank")
        self.driver.get(link)
        self.node = node
        self.wait(
            lambda: self.driver.current_url == node.api + "/",
            "the login link to leave the address bar",
        )
        self.wait(lambda: self.find("#balance").text != "", "the header to show my balance")

    def go(self, route: str) -> None:
        """Open a view (`bounties`, `bounty/<id>`, `account`, ...) on the current node."""
        assert self.node is not None, "log in first"
        self.driver.get(f"{self.node.api}/#/{route}")
        self.wait(
            lambda: self.js("return document.documentElement.dataset.route") == f"#/{route}",
            f"the page to draw the view {route}",
        )

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def click(self, css: str) -> None:
        """Click the element once it is there and enabled (a live redraw that
        replaces it in between is retried: the stale element was not clicked)."""

        def once() -> bool:
            el = self._enabled(css)
            if el is None:
                return False
            el.click()
            return True

        self.wait(once, f"{css} to be clickable")

    def texts(self, css: str) -> list[str]:
        """The texts of the elements matching `css`, once there are some (read
        again if a live redraw replaced them while reading)."""
        return self.wait(lambda: [str(e.text) for e in self.finds(css)] or None, f"{css} texts")

    def attr(self, css: str, name: str) -> str:
        return str(self.wait(lambda: self.find(css).get_attribute(name), f"{css} [{name}]"))

    def _enabled(self, css: str) -> WebElement | None:
        el = self.find(css)
        return el if el.is_displayed() and el.is_enabled() else None

    def fill(self, css: str, text: str) -> None:
        el = self.wait(lambda: self._enabled(css), f"{css} to be editable")
        el.clear()
        el.send_keys(text)

    def set_value(self, css: str, value: str) -> None:
        """Set an input's value as a script would (date pickers), firing `input`."""
        el = self.wait(lambda: self._enabled(css), f"{css} to be editable")
        self.driver.execute_script(
            "arguments[0].value = arguments[1];"
            "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
            el,
            value,
        )

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def main_text(self) -> str:
        try:
            return str(self.find("main").text)
        except (NoSuchElementException, JavascriptException, StaleElementReferenceException):
            return "(no main)"

    def console(self) -> list[str]:
        try:
            return [f"{e['level']}: {e['message']}" for e in self.driver.get_log("browser")]
        except Exception:  # the log is a courtesy for failure messages
            return []

    def balance(self) -> int:
        """The balance in the page's header (redrawn on every change: read again
        if it was replaced while reading)."""
        text = self.wait(lambda: self.find("#balance").text or None, "the header balance")
        return int(str(text).replace(",", ""))

    # -- screen sizes and screenshots ----------------------------------------------------

    def phone(self) -> None:
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 1, "mobile": True},
        )

    def desktop(self) -> None:
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        self.driver.set_window_size(*DESKTOP)

    def screenshot(self, name: str) -> Path:
        out = ARTIFACTS / "screenshots" / f"{name}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(out))
        return out

    def full_screenshot(self, name: str, width: int) -> Path:
        """The whole page (not only the viewport) at `width` CSS pixels."""
        height = int(self.js("return document.documentElement.scrollHeight"))
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": min(max(height, 400), 6000),
                "deviceScaleFactor": 1,
                "mobile": width < 600,
            },
        )
        try:
            return self.screenshot(name)
        finally:
            if width < 600:
                self.phone()
            else:
                self.desktop()

    def dump(self, name: str, data: Any) -> None:
        out = ARTIFACTS / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=2, default=str))
