"""Headless Chromium driven over its DevTools protocol on a pipe: no WebDriver, no extra Python package.

`chromium --remote-debugging-pipe` reads JSON commands from fd 3 and writes
replies and events to fd 4, each message ended by a NUL byte. That is all a
test needs to open a page, evaluate JavaScript in it, resize the viewport and
take screenshots — and it keeps working on a machine with no internet, since
Debian's `chromium` is the only part.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe"]


def chromium_path() -> str | None:
    return shutil.which("chromium")


class BrowserError(RuntimeError):
    pass


class Browser:
    """One Chromium process and one page (tab) in it."""

    def __init__(self, profile: Path, log_path: Path) -> None:
        binary = chromium_path()
        if binary is None:
            raise BrowserError("no chromium on PATH")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds() -> None:  # runs in the child: put the pipe ends where Chromium expects them
            high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4 first
            high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        profile.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     preexec_fn=fds, pass_fds=(3, 4),
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._lock = threading.Lock()
        self._buf = b""
        target = self.command("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.command("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.command("Page.enable", session=True)
        self.command("Runtime.enable", session=True)
        self.console: list[str] = []

    # --- protocol ---------------------------------------------------------------------------------
    def command(self, method: str, params: dict[str, Any] | None = None, session: bool = False,
                timeout: float = 30.0) -> Any:
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            msg: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = self.session
            os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
            deadline = time.monotonic() + timeout
            while True:
                reply = self._read(deadline)
                if reply.get("method") == "Runtime.consoleAPICalled":
                    args = reply.get("params", {}).get("args", [])
                    self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
                elif reply.get("method") == "Runtime.exceptionThrown":
                    self.console.append(json.dumps(reply.get("params", {}).get("exceptionDetails", {}))[:500])
                if reply.get("id") == ident:
                    if "error" in reply:
                        raise BrowserError(f"{method}: {reply['error']}")
                    return reply.get("result", {})

    def _read(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise BrowserError("chromium closed its DevTools pipe")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        result: dict[str, Any] = json.loads(msg)
        return result

    # --- what tests use ------------------------------------------------------------------------------
    def open(self, url: str) -> None:
        self.command("Page.navigate", {"url": url}, session=True)

    def eval(self, expression: str) -> Any:
        result = self.command("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                   "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 10.0, what: str = "") -> Any:
        """Poll `expression` in the page until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.eval(expression)
            except BrowserError as exc:
                last = str(exc)
            else:
                if last:
                    return last
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what or expression} (last: {last!r}); "
                             f"console: {self.console[-5:]}")

    def viewport(self, width: int, height: int, mobile: bool = False, scale: float = 1.0) -> None:
        self.command("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                            "deviceScaleFactor": scale, "mobile": mobile},
                     session=True)

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            metrics = self.command("Page.getLayoutMetrics", session=True)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.command("Page.captureScreenshot", params, session=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.command("Browser.close", timeout=5)
                self.proc.wait(5)
        except (BrowserError, OSError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()
