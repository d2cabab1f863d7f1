"""Headless Chromium driven over the DevTools protocol through a pipe (no extra package).

``chromium --remote-debugging-pipe`` reads protocol commands on file descriptor 3 and writes
responses and events on 4, each a JSON text ended by a NUL byte. :class:`Browser` opens a
page, blocks every network request the page makes (``Fetch``: the page itself is the only
request let through) and records what happened: every request attempted, console messages,
uncaught exceptions, browser log entries (Content-Security-Policy refusals show there).
DNS resolves nothing and the proxy points nowhere, so nothing could leave the machine even
if interception missed a request.

    with Browser() as browser:
        visit = browser.open(path, width=390)
        visit.screenshot        # PNG bytes of the whole page
        visit.requests          # URLs the page asked for, besides itself
        visit.errors            # console errors, exceptions, error log entries
        browser.evaluate("document.title")
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 30.0


def binary() -> str | None:
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    found = binary()
    if found is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    return found


@dataclass
class Visit:
    url: str
    screenshot: bytes = b""
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Browser:
    """One headless Chromium; ``open`` loads a page in a fresh tab and records the visit."""

    def __init__(self, *, loopback: bool = False) -> None:
        """``loopback``: pages on 127.0.0.1 can be loaded (a live page from a test server);
        every other host still resolves to nothing."""
        self.binary = require_chromium()
        self.profile = tempfile.mkdtemp(prefix="mirrorline-chromium-")
        self._log = open(os.path.join(self.profile, "chromium.log"), "wb")  # noqa: SIM115
        cmd_r, self._cmd_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        args = [
            "--headless",
            "--no-sandbox",  # CI runs as root in a container
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND" + (", EXCLUDE 127.0.0.1" if loopback else ""),
            "--proxy-server=http://127.0.0.1:9",
            *(["--proxy-bypass-list=127.0.0.1"] if loopback else []),
            "about:blank",
        ]
        # fd 3 = commands in, fd 4 = responses out, whatever numbers os.pipe gave (bash: dash
        # redirects single-digit descriptors only)
        self.process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{cmd_r} 4>&{resp_w}', self.binary, *args],
            pass_fds=(cmd_r, resp_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        os.close(cmd_r)
        os.close(resp_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self.session: str | None = None
        self._answers: dict[int, dict[str, Any]] = {}
        self._visit = Visit(url="about:blank")
        self._allow: str | None = None  # requests starting with this go through (open_url)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing anyway
            self.call("Browser.close", session=False, timeout_s=5.0)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._cmd_w, self._resp_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- protocol ------------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._resp_r], [], [], left)
            if ready:
                chunk = os.read(self._resp_r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe: {self.log_tail()}")
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def _send(self, method: str, params: dict[str, Any] | None, session: bool) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session is not None:
            message["sessionId"] = self.session
        try:
            os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise RuntimeError(f"Chromium exited: {self.log_tail()}") from None
        return self._next_id

    def log_tail(self) -> str:
        """The end of Chromium's stderr (why it stopped)."""
        self._log.flush()
        text = Path(self._log.name).read_text(errors="replace")
        return text[-2000:]

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True,
        timeout_s: float = TIMEOUT_S,
    ) -> dict[str, Any]:  # fmt: skip
        """Send a command and wait for its answer; events that arrive meanwhile are kept
        (:meth:`wait_for`), paused requests answered."""
        sent = self._send(method, params, session)
        deadline = time.monotonic() + timeout_s
        while sent not in self._answers:
            self._pump(deadline)
        answer = self._answers.pop(sent)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def wait_for(self, method: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self._events:
                if event.get("method") == method:
                    return event
            self._pump(deadline)

    def _pump(self, deadline: float) -> None:
        """Read one message: an answer is kept by id, an event recorded; a paused request
        is let through when it is the page itself and refused otherwise."""
        message = self._read_message(deadline)
        if "id" in message:
            self._answers[message["id"]] = message
        elif message.get("method") == "Fetch.requestPaused":
            paused = message["params"]
            url = paused["request"]["url"]
            if url == self._visit.url or (self._allow is not None and url.startswith(self._allow)):
                self._send("Fetch.continueRequest", {"requestId": paused["requestId"]}, True)
            else:
                self._visit.blocked.append(url)
                self._send(
                    "Fetch.failRequest",
                    {"requestId": paused["requestId"], "errorReason": "BlockedByClient"},
                    True,
                )
        else:
            self._events.append(message)

    # -- pages ---------------------------------------------------------------------------

    def open(self, path: Path, *, width: int = 1000, settle_s: float = 0.5) -> Visit:
        """Load ``path`` (file://) at ``width`` CSS pixels, block every request it makes,
        and take a full-page screenshot."""
        url = path.resolve().as_uri()
        self._navigate(url, width, allow_prefix=None)
        deadline = time.monotonic() + settle_s  # late requests, console messages
        while time.monotonic() < deadline:
            try:
                self._pump(deadline)
            except TimeoutError:
                break
        self._collect()
        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": int(height), "deviceScaleFactor": 1,
             "mobile": width < 600},
        )  # fmt: skip
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        self._visit.screenshot = base64.b64decode(shot["data"])
        return self._visit

    def open_url(self, url: str, *, allow_prefix: str, width: int = 1000) -> Visit:
        """Load a page served over http (a live page): requests starting with
        ``allow_prefix`` go through, every other one is blocked. The visit goes on after
        this returns: :meth:`errors_now` collects what happened so far."""
        self._navigate(url, width, allow_prefix=allow_prefix)
        return self._visit

    def _navigate(self, url: str, width: int, *, allow_prefix: str | None) -> None:
        """A fresh tab at ``width`` CSS pixels with every request intercepted (those
        starting with ``allow_prefix`` let through), loaded with ``url``."""
        self._visit = Visit(url=url)
        self._allow = allow_prefix
        self._events = []
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
            session=False,
        )  # fmt: skip
        self.session = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600},
        )
        self.call("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def errors_now(self, settle_s: float = 0.3) -> list[str]:
        """The visit's errors (and requests) up to now, after ``settle_s`` of listening."""
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            try:
                self._pump(deadline)
            except TimeoutError:
                break
        self._visit.errors, self._visit.requests = [], []
        self._collect()
        return self._visit.errors

    def _collect(self) -> None:
        visit = self._visit
        for event in self._events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                request_url = params["request"]["url"]
                if request_url != visit.url:
                    visit.requests.append(request_url)
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
                "warning",
            ):
                texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
                visit.errors.append(f"console.{params['type']}: {' '.join(texts)}")
            elif method == "Runtime.exceptionThrown":
                visit.errors.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                visit.errors.append(f"log: {params['entry']['text']}")
        visit.requests += [u for u in visit.blocked if u not in visit.requests]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the open page (DevTools evaluation: the
        page's own CSP does not apply to it)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")
