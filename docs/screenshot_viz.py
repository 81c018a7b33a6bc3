"""Screenshot a running kedro-viz with headless Chromium, pop-ups dismissed (for the README).

Usage (from the project root, after `apt-get install chromium`):
    KEDRO_DISABLE_TELEMETRY=1 .venv/bin/kedro viz run --host 127.0.0.1 --port 4141 --no-browser &
    .venv/bin/python docs/screenshot_viz.py "http://127.0.0.1:4141/?pid=__default__" docs/images/kedro_viz.png

Views (kedro-viz reads them from the URL; layers are drawn as bands whenever the catalog names them):
    ?pid=__default__&expandAllPipelines=true     every node, in its layer band
    ?pid=__default__&tags=training,evaluation    only the nodes with these tags
    ?pid=sweep                                   the sweep pipeline
Add `--sidebar` to keep the sidebar (it lists the tags and layers) in the picture.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from itertools import count

from websockets.sync.client import connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1600,1000",
]
DEBUG_PORT = 9333
SEED_STATE = """
localStorage.setItem('KedroViz', JSON.stringify({showFeatureHints: false, featureHintStep: 0,
                                                 visible: {sidebar: %s, layers: true}}));
"""
# Close kedro-viz's release banner if it shows.
DISMISS_POPUPS = """
for (const el of document.querySelectorAll('button, [role=button]')) {
  const text = (el.innerText || el.getAttribute('aria-label') || '').trim().toLowerCase();
  if (['dismiss', 'close', 'got it', 'skip'].includes(text) || el.className.toString().includes('close')) el.click();
}
"""


def _send(ws, ids, method: str, **params) -> dict:
    message_id = next(ids)
    ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
    while True:
        reply = json.loads(ws.recv())
        if reply.get("id") == message_id:
            return reply.get("result", {})


def main(url: str, output: str, sidebar: bool = False) -> None:
    """Open `url`, dismiss pop-ups, and write a PNG screenshot to `output`."""
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [
                "chromium",
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={DEBUG_PORT}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(50):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{DEBUG_PORT}/json") as response:
                        pages = [t for t in json.load(response) if t["type"] == "page"]
                    break
                except OSError:
                    time.sleep(0.2)
            ids = count(1)
            with connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as ws:
                _send(ws, ids, "Page.enable")
                # kedro-viz reads its UI state from localStorage: switch the feature tour off
                # and hide the sidebar before the app starts.
                _send(
                    ws,
                    ids,
                    "Page.addScriptToEvaluateOnNewDocument",
                    source=SEED_STATE % ("true" if sidebar else "false"),
                )
                _send(ws, ids, "Page.navigate", url=url)
                time.sleep(8)  # let the graph lay out
                for _ in range(3):
                    _send(ws, ids, "Runtime.evaluate", expression=DISMISS_POPUPS)
                    time.sleep(1)
                shot = _send(ws, ids, "Page.captureScreenshot", format="png")
            with open(output, "wb") as file:
                file.write(base64.b64decode(shot["data"]))
        finally:
            browser.terminate()
            browser.wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sidebar="--sidebar" in sys.argv[3:])
