"""Helpers for the browser tests (tests/test_browser.py): Debian's Chromium driven by Playwright,
loopback servers that are always stopped, and a guard that keeps every page off the network.

Nothing here downloads a browser: Playwright only drives the system Chromium
(``scripts/install-browser.sh`` installs it with apt-get).
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent

#: Where Debian's ``chromium`` package puts the browser; ``PCONV_CHROMIUM`` overrides it.
CHROMIUM = os.environ.get("PCONV_CHROMIUM", "/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
]

LOOPBACK = "127.0.0.1"


def require_chromium() -> str:
    """The Chromium executable; fails in CI and skips elsewhere when it is not installed."""
    if os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = (
        f"Chromium not found at {CHROMIUM}: run scripts/install-browser.sh "
        "(as root it installs Debian's chromium with apt-get) or set PCONV_CHROMIUM"
    )
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def launch_chromium(playwright):
    """Launch the system Chromium headless (never a browser downloaded by Playwright)."""
    return playwright.chromium.launch(
        executable_path=require_chromium(), args=CHROMIUM_ARGS, headless=True, timeout=60_000
    )


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# Keeping pages off the network


def is_local_url(url: str, allowed_ports: set[int] | None = None) -> bool:
    """True for file:, data:, blob:, about: URLs and for http(s)/ws(s) to 127.0.0.1."""
    parts = urlsplit(url)
    if parts.scheme in ("file", "data", "blob", "about", "chrome-error"):
        return True
    if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname == LOOPBACK:
        return allowed_ports is None or parts.port in allowed_ports
    return False


class NetworkGuard:
    """Routes every request of a browser context: loopback and file: ones go through, anything
    else is aborted and recorded (so that a test can assert that rendering needed none)."""

    def __init__(self, context, allowed_ports: set[int] | None = None):
        self.allowed_ports = allowed_ports
        self.blocked: list[str] = []
        self.failed: list[str] = []
        context.route("**/*", self._route)
        context.on("requestfailed", self._on_failed)
        context.on("response", self._on_response)

    def _route(self, route):
        url = route.request.url
        if is_local_url(url, self.allowed_ports):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _on_failed(self, request):
        if request.url in self.blocked:
            return
        self.failed.append(f"{request.url} ({request.failure})")

    def _on_response(self, response):
        if response.status >= 400:
            self.failed.append(f"{response.url} (HTTP {response.status})")

    def reset(self):
        self.blocked.clear()
        self.failed.clear()


# --------------------------------------------------------------------------------------------
# Servers


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@contextlib.contextmanager
def static_server(directory: Path):
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL
    (ending with '/') and shuts the server down on exit."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="book-http", daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class ServerProcess:
    """A server started in its own process group, so that stopping it stops its children too
    (a Jupyter server's kernels). Output goes to a log file quoted in failure messages."""

    def __init__(self, argv: list[str], log_path: Path, env: dict | None = None, cwd=None):
        self.argv = argv
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"

    def wait_for_http(self, url: str, timeout: float = 60.0) -> None:
        """Poll ``url`` until it answers 200; fail (quoting the server's log) after ``timeout``."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.argv[0]} exited with {self.proc.returncode} before answering {url}:\n"
                    + self.log_tail()
                )
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                last = exc
            time.sleep(0.25)
        raise TimeoutError(f"{url} did not answer within {timeout:.0f} s ({last}):\n" + self.log_tail())

    def descendants(self) -> list[tuple[int, str]]:
        """(pid, start time) of the processes this server started: its kernels run in sessions
        of their own, so the process group does not reach them."""
        children: dict[int, list[tuple[int, str]]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            children.setdefault(int(fields[1]), []).append((int(stat.parent.name), fields[19]))
        found, todo = [], [self.proc.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append(child)
                todo.append(child[0])
        return found

    @staticmethod
    def _kill_if_same(pid: int, start: str) -> None:
        """SIGKILL ``pid`` only if it is still the process recorded (same start time)."""
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return
        if fields[19] == start and fields[0] != "Z":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited after ``timeout``;
        then SIGKILL whatever the server had started and left running."""
        started = self.descendants() if self.proc.poll() is None else []
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Children that outlived the leader (kernels) still belong to the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid, start in started:
            self._kill_if_same(pid, start)
        self._log.close()


def drag_stroke(page, selector: str, start=(0.2, 0.3), step=(0.03, 0.02), moves: int = 20) -> None:
    """Paint a straight stroke with the mouse over the element ``selector``: press at ``start``
    (fractions of its width and height), move ``moves`` times by ``step``, release."""
    box = page.locator(selector).bounding_box()
    at = lambda fx, fy: (box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.mouse.move(*at(*start))
    page.mouse.down()
    for t in range(1, moves + 1):
        page.mouse.move(*at(start[0] + step[0] * t, start[1] + step[1] * t))
    page.mouse.up()


_PLAYWRIGHT = None


def playwright_session():
    """The one Playwright of this test process: Playwright refuses a second sync_playwright()
    while one runs, so the browser test modules share this one (stopped when the process ends)."""
    global _PLAYWRIGHT
    if _PLAYWRIGHT is None:
        import atexit

        from playwright.sync_api import sync_playwright

        _PLAYWRIGHT = sync_playwright().start()
        atexit.register(_PLAYWRIGHT.stop)
    return _PLAYWRIGHT
