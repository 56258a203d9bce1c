#!/usr/bin/python3
"""browser_check.py — opens an HTML report from disk in headless Chromium and checks it
the way a reader's browser shows it, through the DevTools protocol (Debian's chromium and
python3-websocket; python3-pil decodes the screenshots).

  browser_check.py REPORT.html SCREENSHOT.png [--min_figures=N]

Checks, each failure printed as one line naming the problem:
  - every request the page makes is to file: or data: (nothing from the network; host
    names resolve nowhere, so a stray request fails here instead of leaving the machine);
  - no console error, no uncaught exception, no error logged by the browser (a broken
    SVG, a missing resource);
  - at least N <figure> elements, as many as the HTML file has, each holding an <svg> with
    a non-empty box, and each figure's area of the screenshot is not blank: at least 1% of
    its pixels differ from its most common colour, in at least 2 colours.
Writes a screenshot of the top of the page (1280x6000) to SCREENSHOT.png. Exit status: 0 all checks
passed, 1 a check failed, 2 the browser could not be driven.
"""
import argparse
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # python3-websocket
from PIL import Image  # python3-pil

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    # Every host name resolves nowhere: a request for a network resource fails at once,
    # inside the browser, and is reported below as a network load.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--window-size=1280,1024", "--remote-debugging-port=0",
]
BLANK_FRACTION = 0.01  # a figure with fewer non-background pixels than this is blank
VIEW_WIDTH, TILE = 1280, 6000  # the viewport's size while figures are captured


class Page:
  """A DevTools session on the first page target; events are kept in order."""

  def __init__(self, ws_url):
    self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
    self.next_id = 0
    self.events = []

  def call(self, method, **params):
    self.next_id += 1
    my_id = self.next_id
    self.ws.settimeout(60)  # wait_for and drain shorten it
    self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
    while True:
      msg = json.loads(self.ws.recv())
      if msg.get("id") == my_id:
        if "error" in msg:
          raise RuntimeError("%s: %s" % (method, msg["error"]))
        return msg.get("result", {})
      if "method" in msg:
        self.events.append(msg)

  def _receive_until(self, deadline, minimum_wait):
    """Keeps the next event received before `deadline`; False when none came in time."""
    self.ws.settimeout(max(minimum_wait, deadline - time.time()))
    try:
      msg = json.loads(self.ws.recv())
    except websocket.WebSocketTimeoutException:
      return False
    if "method" in msg:
      self.events.append(msg)
    return True

  def wait_for(self, event, timeout_s):
    deadline = time.time() + timeout_s
    while not any(e["method"] == event for e in self.events):
      if time.time() > deadline:
        raise RuntimeError("no %s within %d s" % (event, timeout_s))
      self._receive_until(deadline, 0.1)

  def drain(self, seconds):
    """Collects events for `seconds` more (late console errors, late requests)."""
    deadline = time.time() + seconds
    while time.time() < deadline and self._receive_until(deadline, 0.05):
      pass


def start_chromium(profile):
  binary = shutil.which("chromium") or shutil.which("chromium-browser")
  if not binary:
    print("browser_check: chromium not found on PATH (tools/setup.sh installs Debian's chromium)")
    sys.exit(2)
  log = open(os.path.join(profile, "chromium.log"), "w")
  proc = subprocess.Popen([binary, "--user-data-dir=" + profile] + CHROMIUM_FLAGS + ["about:blank"],
                          stdout=log, stderr=subprocess.STDOUT)
  port_file = os.path.join(profile, "DevToolsActivePort")
  deadline = time.time() + 60
  while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
    if proc.poll() is not None or time.time() > deadline:
      log.close()
      print("browser_check: chromium did not open its DevTools port (exit %s); its log:" % proc.poll())
      print(open(os.path.join(profile, "chromium.log")).read()[-4000:])
      proc.kill()
      sys.exit(2)
    time.sleep(0.1)
  port = int(open(port_file).read().split("\n")[0])
  targets = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10))
  pages = [t for t in targets if t.get("type") == "page"]
  if not pages:
    proc.kill()
    print("browser_check: chromium has no page target: %s" % targets)
    sys.exit(2)
  return proc, pages[0]["webSocketDebuggerUrl"]


def blank_reason(img):
  """None when the image shows something; otherwise why it is blank."""
  pixels = img.width * img.height
  if pixels == 0:
    return "an empty screenshot"
  colors = img.getcolors(maxcolors=pixels)
  background = max(colors)[0]
  other = pixels - background
  if len(colors) < 2 or other < BLANK_FRACTION * pixels:
    return "blank: %d of %d pixels (%.2f%%) differ from the background, in %d colours" % (
        other, pixels, 100.0 * other / pixels, len(colors))
  return None


def check(report, screenshot, min_figures):
  problems = []
  html = open(report, encoding="utf-8").read()
  figures_in_file = html.count("<figure>")
  profile = tempfile.mkdtemp(prefix="browser_check_")
  proc, ws_url = start_chromium(profile)
  try:
    page = Page(ws_url)
    for domain in ("Page", "Runtime", "Log", "Network"):
      page.call(domain + ".enable")
    url = "file://" + os.path.abspath(report)
    page.call("Page.navigate", url=url)
    page.wait_for("Page.loadEventFired", 60)
    page.drain(1.0)

    for e in page.events:
      m, p = e["method"], e.get("params", {})
      if m == "Network.requestWillBeSent":
        req = p["request"]["url"]
        if not (req.startswith("file:") or req.startswith("data:")):
          problems.append("network load: %s" % req[:200])
      elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
        problems.append("console %s: %s" % (p["type"], text[:200]))
      elif m == "Runtime.exceptionThrown":
        d = p.get("exceptionDetails", {})
        problems.append("uncaught exception: %s" % (d.get("exception", {}).get("description") or d.get("text"))[:200])
      elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
        problems.append("browser error (%s): %s" % (p["entry"].get("source"), p["entry"].get("text", "")[:200]))

    boxes = page.call("Runtime.evaluate", returnByValue=True, expression="""
      Array.from(document.querySelectorAll('figure')).map((f, i) => {
        const s = f.querySelector('svg');
        const r = (s || f).getBoundingClientRect();
        return {index: i, svg: !!s, x: r.left + window.scrollX, y: r.top + window.scrollY,
                width: r.width, height: r.height,
                caption: (f.querySelector('figcaption') || {}).textContent || ''};
      })""")["result"]["value"]
    if len(boxes) != figures_in_file:
      problems.append("the page shows %d figures, the file has %d" % (len(boxes), figures_in_file))
    if len(boxes) < min_figures:
      problems.append("%d figures, expected at least %d" % (len(boxes), min_figures))

    # The page can be hundreds of thousands of pixels tall (the report's tables), too big
    # for one screenshot: the viewport is made TILE pixels tall and scrolled to each group
    # of figures; each figure is cropped from its tile. The first tile (the top of the
    # page) is kept as SCREENSHOT.
    page.call("Emulation.setDeviceMetricsOverride", width=VIEW_WIDTH, height=TILE, deviceScaleFactor=1, mobile=False)

    def capture(y):
      page.call("Runtime.evaluate", awaitPromise=True, expression=(
          "window.scrollTo(0, %d); new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))" % y))
      scrolled = page.call("Runtime.evaluate", returnByValue=True, expression="window.scrollY")["result"]["value"]
      shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
      return scrolled, shot

    _, top = capture(0)
    with open(screenshot, "wb") as f:
      f.write(top)

    pending = [b for b in boxes if b["svg"] and b["width"] >= 10 and b["height"] >= 10]
    for b in boxes:
      name = "figure %d (%s)" % (b["index"] + 1, b["caption"][:60])
      if not b["svg"]:
        problems.append("%s: no <svg>" % name)
      elif b["width"] < 10 or b["height"] < 10:
        problems.append("%s: its <svg> is %.0fx%.0f px" % (name, b["width"], b["height"]))
    pending.sort(key=lambda b: b["y"])
    while pending:
      scrolled, shot = capture(int(pending[0]["y"]))
      tile = Image.open(io.BytesIO(shot)).convert("RGB")
      rest = []
      for b in pending:
        top_in_tile = b["y"] - scrolled
        if top_in_tile < 0 or top_in_tile + b["height"] > tile.height:
          rest.append(b)
          continue
        crop = tile.crop((int(b["x"]), int(top_in_tile), int(b["x"] + b["width"]), int(top_in_tile + b["height"])))
        reason = blank_reason(crop)
        if reason:
          problems.append("figure %d (%s): %s" % (b["index"] + 1, b["caption"][:60], reason))
      if len(rest) == len(pending):  # taller than a tile, or beyond the page: check what shows
        b = rest.pop(0)
        problems.append("figure %d (%s): could not be brought into view (%.0f px tall at y %.0f)" % (
            b["index"] + 1, b["caption"][:60], b["height"], b["y"]))
      pending = rest
    page.ws.close()
  finally:
    proc.kill()
    proc.wait()
    shutil.rmtree(profile, ignore_errors=True)
  return len(boxes), problems


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("report")
  ap.add_argument("screenshot")
  ap.add_argument("--min_figures", type=int, default=1)
  args = ap.parse_args()
  if not os.path.isfile(args.report):
    print("browser_check: %s: no such file" % args.report)
    return 2
  figures, problems = check(args.report, args.screenshot, args.min_figures)
  for p in problems:
    print("browser_check: %s: %s" % (args.report, p))
  print("browser_check: %s: %d figures, %d problems; screenshot %s" % (
      args.report, figures, len(problems), args.screenshot))
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main())
