"""A real headless Chromium for the report's tests and the README's screenshot.

The browser is Debian's ``chromium`` (``./build.sh test`` and ``./build.sh browser`` install it
with apt when it is missing), or whatever ``COACHFLOW_CHROMIUM`` names; it is driven by the pip
package ``playwright`` (pinned in requirements-dev.txt), whose own browser download is never used.
Chromium starts with no network of its own: no background requests, no component updates.

``python -m emulator.browser check`` (the version), ``python -m emulator.browser screenshot
[REPORT.html] [--out PNG]`` (default: the demo's latest report into docs/images/report.png).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emulator.stack import ROOT, STATE_ROOT

SCREENSHOT = ROOT / "docs" / "images" / "report.png"
FLAGS = [
    "--headless=new",
    "--no-sandbox",  # root in CI and containers
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 900}


def chromium() -> str | None:
    """The Chromium binary: ``COACHFLOW_CHROMIUM``, else the first on PATH."""
    configured = os.environ.get("COACHFLOW_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def launched() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``)."""
    from playwright.sync_api import sync_playwright

    binary = chromium()
    if binary is None:
        raise RuntimeError("no Chromium: run ./build.sh browser (Debian's chromium through apt) or set COACHFLOW_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page_file: Path, out: Path) -> Path:
    """The whole page as it renders, as a PNG."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with launched() as browser:
        page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
        page.goto(page_file.resolve().as_uri())
        page.wait_for_selector("body[data-ready=true]")
        page.screenshot(path=str(out), full_page=True)
    return out


def latest_report(prefix: str = "demo-") -> Path | None:
    reports = sorted((STATE_ROOT / "reports").glob(f"{prefix}*.html"), key=lambda p: p.stat().st_mtime)
    return reports[-1] if reports else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.browser")
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("check", help="start Chromium once and print its version")
    shot = verbs.add_parser("screenshot", help="a report page as a PNG (default: the demo's latest report into docs/images/report.png)")
    shot.add_argument("report", nargs="?", help="the report's HTML file (default: the latest .coachflow/reports/demo-*.html)")
    shot.add_argument("--out", default=str(SCREENSHOT), help=f"the PNG (default {SCREENSHOT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    if args.verb == "check":
        with launched() as browser:
            print(f"chromium {browser.version} ({chromium()})")
        return 0
    report = Path(args.report) if args.report else latest_report()
    if report is None or not report.is_file():
        print("screenshot: no report: run ./build.sh demo first (it writes one), or name a report file", file=sys.stderr)
        return 2
    print(f"screenshot: {screenshot(report, Path(args.out))} (of {report})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
