"""Screenshot of TensorBoard on a finished run, taken with headless Chromium (for the README).

    python tools/tensorboard_screenshot.py RUN_DIR OUT.png [--tab images] [--size 1400x1000]

Needs Debian's `chromium` package (`apt-get install chromium`) or `--chromium PATH`. Starts
`tensorboard --logdir RUN_DIR` on a free local port, waits until the run's data is served,
has Chromium render the tab (`#images`, `#scalars`, ...) and writes OUT.png atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_tags(url: str, timeout: float = 120) -> None:
    """Until TensorBoard serves image tags for some run (it loads event files in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/data/plugin/images/tags", timeout=5) as response:
                if any(json.loads(response.read()).values()):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"error: TensorBoard at {url} served no images within {timeout:.0f} s")


def screenshot(chromium: str, url: str, out: Path, size: str) -> None:
    width, height = size.lower().split("x")
    tmp = out.with_name(f".{out.stem}.tmp.png")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        "--virtual-time-budget=20000", f"--screenshot={tmp}", url],
                       check=True, capture_output=True, timeout=180)
    os.replace(tmp, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--tab", default="images", help="TensorBoard tab: images, scalars, ...")
    parser.add_argument("--size", default="1400x1000", help="window size WIDTHxHEIGHT")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = parser.parse_args()
    if not args.chromium:
        raise SystemExit("error: no chromium found: `apt-get install chromium`, or pass --chromium PATH")
    logs = args.run_dir / "logs" if (args.run_dir / "logs").is_dir() else args.run_dir
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logs),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_tags(url)
        screenshot(args.chromium, f"{url}/#{args.tab}", args.out, args.size)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"TensorBoard {args.tab} tab of {logs} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
