"""Open the report pages in headless Chromium, as an analyst would, with the network
disabled: full-page screenshots (``make screenshots``) and checks (``tests/test_browser.py``).

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``:
commands on fd 3, replies on fd 4, NUL-separated JSON), so nothing beyond the standard
library is needed. Every request the page makes goes through ``Fetch``: ``file:`` and
``data:`` URLs load, any other is recorded and refused (and the host resolver maps every
name to nothing, so even a request outside ``Fetch`` cannot leave the machine).

``render(html, png)`` returns a ``PageCheck``: the external requests, the page's width
against the window, tables wider than the page, and where the banner, the key figures and
the alerts table sit relative to the first screen.

Usage: ``python -m obslib.browser --out out/screenshots NAME=PAGE.html ...``
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ObsError

WIDTH, HEIGHT = 1400, 900  # the analyst's window: the first screen is the top HEIGHT px
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost")

# where the page's landmarks are and what overflows, measured in the page
_MEASURE = """(() => {
  const box = (sel) => { const e = document.querySelector(sel); if (!e) return null;
    const r = e.getBoundingClientRect(); return {top: r.top + scrollY, bottom: r.bottom + scrollY,
    left: r.left, right: r.right}; };
  const wide = [...document.querySelectorAll('table')].filter(t => t.getBoundingClientRect().right > innerWidth + 1
      || t.scrollWidth > t.parentElement.clientWidth + 1)
    .map(t => (t.id || t.className || 'table') + ' ' + Math.round(t.getBoundingClientRect().width) + 'px');
  return JSON.stringify({title: document.title, scroll_width: document.documentElement.scrollWidth,
    inner_width: innerWidth, page_height: document.documentElement.scrollHeight,
    banner: box('#obs-banner'), key_figures: box('#obs-key-figures'), alerts: box('#obs-alerts') ||
    box('#obs-alerts-empty'), wide_tables: wide,
    code_cells: document.querySelectorAll('.jp-CodeCell .jp-InputArea, .jp-CodeMirrorEditor').length,
    stderr_outputs: document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]').length});
})()"""


@dataclass
class PageCheck:
    """What ``render`` found on one page (positions in CSS px from the page top)."""

    page: str
    screenshot: str
    title: str = ""
    external_requests: list[str] = field(default_factory=list)
    scroll_width: int = 0
    inner_width: int = 0
    page_height: int = 0
    banner: dict | None = None
    key_figures: dict | None = None
    alerts: dict | None = None
    wide_tables: list[str] = field(default_factory=list)
    code_cells: int = 0
    stderr_outputs: int = 0  # warnings or errors printed by a cell, shown on the page

    def on_first_screen(self, name: str, height: int = HEIGHT) -> bool:
        """Whether landmark ``name`` (banner, key_figures, alerts) starts within the first screen."""
        box = getattr(self, name)
        return box is not None and box["top"] < height

    def problems(self, height: int = HEIGHT) -> list[str]:
        """What an analyst would see wrong, in words (empty when the page is fine)."""
        out = [f"external request: {u}" for u in self.external_requests]
        if self.scroll_width > self.inner_width:
            out.append(f"page scrolls sideways: {self.scroll_width} px wide in a {self.inner_width} px window")
        out += [f"table wider than the page: {t}" for t in self.wide_tables]
        for name in ("banner", "key_figures", "alerts"):
            if not self.on_first_screen(name, height):
                out.append(f"{name} is not on the first screen" if getattr(self, name) else f"no {name} on the page")
        if self.code_cells:
            out.append(f"{self.code_cells} code input element(s) shown")
        if self.stderr_outputs:
            out.append(f"{self.stderr_outputs} stderr output(s) (warnings, errors) shown")
        return out


def find_chromium() -> str | None:
    """Path of a Chromium executable (``$OBS_CHROMIUM`` first), or None."""
    explicit = os.environ.get("OBS_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _Pipe:
    """The DevTools protocol over Chromium's debugging pipe."""

    def __init__(self, proc: subprocess.Popen, to_chrome: int, from_chrome: int, timeout_s: float):
        self.proc, self.w, self.r, self.timeout_s = proc, to_chrome, from_chrome, timeout_s
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def _read_one(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ObsError("chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise ObsError("chromium closed its debugging pipe (did it crash?)")
                self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send a command and wait for its reply (events meanwhile are queued)."""
        want = self.send(method, params, session)
        deadline = time.monotonic() + self.timeout_s
        while True:
            msg = self._read_one(deadline)
            if msg.get("id") == want:
                if "error" in msg:
                    raise ObsError(f"chromium: {method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            self.events.append(msg)

    def next_event(self, deadline: float) -> dict:
        return self.events.pop(0) if self.events else self._read_one(deadline)


def _high_fd(fd: int, low: int = 10) -> int:
    """``fd`` moved to a number >= ``low`` (the original is closed)."""
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    os.close(fd)
    return high


def render(html: Path, png: Path, *, width: int = WIDTH, height: int = HEIGHT, chromium: str | None = None,
           timeout_s: float = 60.0) -> PageCheck:
    """Open ``html`` (a local file) at ``width`` x ``height`` with the network disabled,
    write a full-page PNG to ``png`` and return what was found. Raises ``ObsError`` when
    Chromium is missing or does not answer."""
    exe = chromium or find_chromium()
    if exe is None:
        raise ObsError("chromium not found (install Debian's 'chromium' package or set OBS_CHROMIUM)")
    url = Path(html).resolve().as_uri()
    profile = Path(tempfile.mkdtemp(prefix="obs-chromium-"))
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    to_r, from_w = _high_fd(to_r), _high_fd(from_w)  # clear of 3 and 4, which the shell reassigns
    cmd = [exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
    # the pipe ends become fds 3 and 4 of chromium (a tiny exec trampoline: no shell limits on fd numbers)
    trampoline = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
                  "os.close(int(sys.argv[1])); os.close(int(sys.argv[2])); os.execv(sys.argv[3], sys.argv[3:])")
    proc = subprocess.Popen([sys.executable, "-c", trampoline, str(to_r), str(from_w), *cmd], pass_fds=(to_r, from_w),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    os.close(to_r)
    os.close(from_w)
    pipe = _Pipe(proc, to_w, from_r, timeout_s)
    check = PageCheck(page=str(html), screenshot=str(png))
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        pipe.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, s)
        pipe.call("Page.enable", {}, s)
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, s)
        pipe.send("Page.navigate", {"url": url}, s)
        deadline = time.monotonic() + timeout_s
        while True:
            ev = pipe.next_event(deadline)
            method = ev.get("method")
            if method == "Fetch.requestPaused":
                req = ev["params"]
                u = req["request"]["url"]
                if u.startswith(("file:", "data:", "about:")):
                    pipe.send("Fetch.continueRequest", {"requestId": req["requestId"]}, s)
                else:
                    check.external_requests.append(u)
                    pipe.send("Fetch.failRequest", {"requestId": req["requestId"], "errorReason": "BlockedByClient"}, s)
            elif method == "Page.loadEventFired":
                break
        time.sleep(0.2)  # late requests (scripts run on load) would show up here
        while pipe.events:
            ev = pipe.events.pop(0)
            if ev.get("method") == "Fetch.requestPaused":
                check.external_requests.append(ev["params"]["request"]["url"])
        found = json.loads(pipe.call("Runtime.evaluate", {"expression": _MEASURE, "returnByValue": True}, s)
                           ["result"]["value"])
        for k, v in found.items():
            setattr(check, k, v)
        full_h = max(height, int(check.page_height))
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": full_h, "deviceScaleFactor": 1, "mobile": False}, s)
        shot = pipe.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": {"x": 0, "y": 0, "width": width, "height": full_h,
                                                             "scale": 1}}, s)
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(base64.b64decode(shot["data"]))
        try:
            pipe.call("Browser.close")
        except ObsError:
            pass
    finally:
        os.close(to_w)
        os.close(from_r)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return check


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m obslib.browser", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="out/screenshots", help="folder for NAME.png (default out/screenshots)")
    ap.add_argument("pages", nargs="+", metavar="NAME=PAGE.html")
    args = ap.parse_args(argv)
    if find_chromium() is None:
        print("chromium not found: install Debian's 'chromium' package (apt-get install -y chromium) or set "
              "OBS_CHROMIUM", file=sys.stderr)
        return 2
    bad = 0
    for spec in args.pages:
        name, _, page = spec.partition("=")
        if not page or not Path(page).is_file():
            print(f"{name}: page {page or '(none)'} not found", file=sys.stderr)
            bad += 1
            continue
        check = render(Path(page), Path(args.out) / f"{name}.png")
        problems = check.problems()
        print(json.dumps({"name": name, **asdict(check), "problems": problems}, ensure_ascii=False))
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
