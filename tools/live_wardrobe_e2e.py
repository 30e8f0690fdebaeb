"""End to end in a real browser: the live wardrobe panel against a running ComfyUI with this pack.

    # a ComfyUI 0.8 with the pack (e.g. /work/shared/tools/comfy_host.sh start <this repo>), then:
    python tools/live_wardrobe_e2e.py --url http://127.0.0.1:8188 [--capture docs/live_wardrobe.webp]

Needs: selenium (pip), Chromium and its driver (Debian: apt-get install chromium chromium-driver),
and torch + PyAV + Pillow for the checks (ComfyUI's own environment has them). Run by hand where
ComfyUI is present; CI has none.

What it does, in headless Chromium:
 1. opens the ComfyUI page and loads workflows/live_wardrobe.json (the bundled garments as the
    wardrobe), queues it;
 2. after `--click-after` chunks have arrived in the panel, picks slot `--slot` and clicks wardrobe
    thumbnail `--index` (default: garment3_upper into 'upper'), and checks the pending state shows;
 3. `--stop-after` chunks after the first chunk wearing it, clicks Stop;
 4. reads the run's output (Save Video's MP4, through /history and /view) and checks that it holds
    exactly the frames the panel counted (Stop returned the frames so far, whole chunks, fewer than
    asked), that every chunk from the switch on retrieves the clicked outfit and every chunk before
    it outfit 1 (the pack's eval garment retrieval against renders of the sample person), and that
    the browser console logged no errors.
It prints the click -> first frame in the new garment time the panel measured (route + websocket
+ generation), and with --capture writes an animated WebP of the panel from the screenshots.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WARDROBE_OUTFIT = {0: ("upper", 1), 1: ("lower", 1), 2: ("upper", 2), 3: ("lower", 2), 4: ("upper", 3)}
PER_CHUNK = 12


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def _driver(width: int, height: int):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "--disable-gpu"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts)


JS_APP = "return !!(window.app && window.app.graph && window.app.canvas);"
JS_PANEL = """
const nodes = window.app.graph._nodes || window.app.graph.nodes;
const n = nodes.find(n => n.comfyClass === 'FashionChameleonStreamGenerate');
if (!n || !n.fcLivePanel) return null;
const p = n.fcLivePanel;
return {id: String(n.id), running: p.running, prompt: p.promptId, state: p.root.dataset.state || '',
        frames: Number(p.counter.dataset.frames || 0), status: p.status.textContent,
        error: p.status.classList.contains('fc-error'), pending: p.pending.size,
        schedule: p.scheduleText.textContent, thumbs: p.thumbs.children.length};
"""
JS_CENTER = """
const nodes = window.app.graph._nodes || window.app.graph.nodes;
const n = nodes.find(n => n.comfyClass === 'FashionChameleonStreamGenerate');
const c = window.app.canvas;
c.ds.scale = 1.0;
c.ds.offset[0] = -n.pos[0] + 420; c.ds.offset[1] = -n.pos[1] + 110;
c.setDirty(true, true);
return [n.pos, n.size];
"""


def _screenshot(driver, frames: list, element=None) -> None:
    from PIL import Image

    png = element.screenshot_as_png if element is not None else driver.get_screenshot_as_png()
    frames.append(Image.open(io.BytesIO(png)).convert("RGB"))


def _wait(driver, what, timeout: float, every: float = 0.1, shots: list | None = None, element=None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        state = driver.execute_script(JS_PANEL)
        if state is not None and what(state):
            return state
        if shots is not None and element is not None:
            _screenshot(driver, shots, element)
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s; panel: {driver.execute_script(JS_PANEL)}")


def _output_video(url: str, prompt_id: str, timeout: float = 120):
    """The MP4 Save Video wrote for `prompt_id`, as frames [T, 3, H, W] in [-1, 1] (the engine's video reader)."""
    import tempfile

    from fashionchameleon.runtime.files.video_read import read_video

    t0 = time.time()
    while time.time() - t0 < timeout:
        hist = json.loads(_get(f"{url}/history/{prompt_id}"))
        if prompt_id in hist and hist[prompt_id].get("status", {}).get("completed") is not None:
            break
        time.sleep(0.5)
    entry = hist[prompt_id]
    files = [f for out in entry["outputs"].values() for key in ("images", "videos", "gifs") for f in out.get(key, [])
             if str(f.get("filename", "")).endswith(".mp4")]
    if not files:
        raise RuntimeError(f"no MP4 in the outputs of {prompt_id}: {entry.get('outputs')} {entry.get('status')}")
    f = files[0]
    q = urllib.parse.urlencode({"filename": f["filename"], "subfolder": f.get("subfolder", ""),
                                "type": f.get("type", "output")})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f["filename"]
        path.write_bytes(_get(f"{url}/view?{q}"))
        video, _ = read_video(path)  # [T, 3, H, W]
    return video, entry


def _retrievals(video, switch_frame: int, index: int) -> list[tuple[int, int, int]]:
    """Per chunk: (first frame, expected outfit 0 = outfit 1 / 1 = with the clicked garment, retrieved)."""
    from fashionchameleon.lab.metrics.retrieval import render_retrieval
    from fashionchameleon.lab.samples import sample_set_of

    slot, outfit = WARDROBE_OUTFIT[index]
    s = sample_set_of()
    old = s.render(s.outfits[0], video.shape[0])
    new = s.render({**s.outfits[0], slot: s.outfits[outfit - 1][slot]}, video.shape[0])
    rows = []
    for start in range(PER_CHUNK, video.shape[0], PER_CHUNK):  # the first chunk continues from the reference
        w = slice(start, start + PER_CHUNK)
        got = render_retrieval(video[w], [old.video[w], new.video[w]], old.background)
        rows.append((start, int(start >= switch_frame), got))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8188")
    p.add_argument("--workflow", default=str(ROOT / "workflows" / "live_wardrobe.json"))
    p.add_argument("--index", type=int, default=4, help="wardrobe thumbnail to click (0-based; 4 = garment3_upper)")
    p.add_argument("--slot", default="upper")
    p.add_argument("--click-after", type=int, default=2, help="chunks shown before the click")
    p.add_argument("--stop-after", type=int, default=3, help="chunks in the new garment before Stop")
    p.add_argument("--capture", default="", help="write an animated WebP of the panel here")
    p.add_argument("--capture-width", type=int, default=360)
    p.add_argument("--timeout", type=float, default=300)
    args = p.parse_args(argv)
    if args.index not in WARDROBE_OUTFIT or WARDROBE_OUTFIT[args.index][0] != args.slot:
        p.error(f"--index {args.index} is not a '{args.slot}' garment of the bundled wardrobe {WARDROBE_OUTFIT}")
    from selenium.common.exceptions import ElementClickInterceptedException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    failures, shots = [], []
    record = shots if args.capture else None  # screenshots cost the server CPU: only when capturing
    driver = _driver(1500, 1300)
    try:
        driver.get(args.url)
        t0 = time.time()
        while not driver.execute_script(JS_APP):
            if time.time() - t0 > 120:
                raise TimeoutError("the ComfyUI page did not load")
            time.sleep(0.5)
        time.sleep(2)  # extensions register after the app object appears
        workflow = json.loads(Path(args.workflow).read_text())
        driver.execute_async_script("const done = arguments[1]; window.app.loadGraphData(arguments[0]).then(() => "
                                    "done(true), e => done(String(e)));", workflow)
        driver.execute_script(JS_CENTER)
        time.sleep(1)
        t0 = time.time()
        while not driver.find_elements(By.CSS_SELECTOR, ".fc-live"):  # DOM widgets attach when the canvas draws
            if time.time() - t0 > 60:
                raise TimeoutError("the live panel did not appear on the stream generate node")
            time.sleep(0.5)
        panel_el = driver.find_element(By.CSS_SELECTOR, ".fc-live")
        registered = driver.execute_script("return (window.app.extensions || []).some(e => e.name === "
                                           "'FashionChameleon.LiveWardrobe');")
        driver.execute_script("window.app.queuePrompt(0, 1);")
        running = _wait(driver, lambda s: s["running"] and s["thumbs"] == 5, args.timeout, shots=record,
                        element=panel_el)
        node_id, prompt_id = running["id"], running["prompt"]
        print(f"running: node {node_id}, prompt {prompt_id}, wardrobe of {running['thumbs']}")
        _wait(driver, lambda s: s["frames"] >= args.click_after * PER_CHUNK, args.timeout, shots=record,
              element=panel_el)
        Select(panel_el.find_element(By.CSS_SELECTOR, "select.fc-slot")).select_by_value(args.slot)
        thumb = panel_el.find_element(By.CSS_SELECTOR, f".fc-thumb[data-index='{args.index}']")
        frames_at_click = driver.execute_script(JS_PANEL)["frames"]
        try:
            thumb.click()  # a real mouse click where the thumbnail is drawn
        except ElementClickInterceptedException:  # a frontend overlay covers it: dispatch the click on it instead
            print("note: the thumbnail was covered by another element; clicked it through the DOM")
            driver.execute_script("arguments[0].click();", thumb)
        pend = _wait(driver, lambda s: s["pending"] > 0 or "frame" in s["status"] or s["error"], 10)
        if record is not None:
            _screenshot(driver, shots, panel_el)
        if pend["error"]:
            failures.append(f"the click was refused: {pend['status']}")
        pending_seen = pend["pending"] > 0 and bool(panel_el.find_elements(By.CSS_SELECTOR, ".fc-thumb.fc-pending"))
        print(f"clicked garment {args.index} at {frames_at_click} frames; pending shown: {pending_seen}")
        worn = _wait(driver, lambda s: " from frame " in s["status"], args.timeout, shots=record, element=panel_el)
        status = worn["status"]
        switch_frame = int(status.split(" from frame ")[1].split()[0].rstrip("."))
        ms = int(status.split("(")[1].split(" ms")[0]) if "ms after the click" in status else None
        print(f"panel: {status}")
        _wait(driver, lambda s: s["frames"] >= switch_frame + args.stop_after * PER_CHUNK, args.timeout, shots=record,
              element=panel_el)
        panel_el.find_element(By.CSS_SELECTOR, "button.fc-stop").click()
        end = _wait(driver, lambda s: s["state"] in ("stopped", "done", "cancelled"), args.timeout, shots=record,
                    element=panel_el)
        for _ in range(6 if record is not None else 0):
            _screenshot(driver, shots, panel_el)
            time.sleep(0.15)
        counter = panel_el.find_element(By.CSS_SELECTOR, ".fc-counter").text
        print(f"ended: {end['state']} after {end['frames']} frames ({counter}); schedule {end['schedule']!r}")
        logs = driver.get_log("browser")
    finally:
        driver.quit()

    if end["state"] != "stopped":
        failures.append(f"the run ended {end['state']}, not stopped")
    if not pending_seen:
        failures.append("no pending state was shown between the click and the switch")
    if switch_frame > (frames_at_click // PER_CHUNK + 2) * PER_CHUNK:
        failures.append(f"clicked at {frames_at_click} frames but worn only from frame {switch_frame}")
    video, _ = _output_video(args.url, prompt_id)
    print(f"output: {video.shape[0]} frames")
    if video.shape[0] != end["frames"] or video.shape[0] % PER_CHUNK or video.shape[0] >= 480:
        failures.append(f"Stop should return the {end['frames']} frames so far (whole chunks, < 480); the output has "
                        f"{video.shape[0]}")
    rows = _retrievals(video, switch_frame, args.index)
    for start, want, got in rows:
        print(f"  chunk at frame {start:>4}: expected {'clicked' if want else 'outfit 1'}, retrieved "
              f"{'clicked' if got else 'outfit 1'}")
    after = [got for start, want, got in rows if want]
    if not after or not all(after):
        failures.append(f"the chunks from frame {switch_frame} on do not all wear the clicked garment: {rows}")
    if not registered:
        failures.append("the extension FashionChameleon.LiveWardrobe is not registered in the frontend")
    severe = [e for e in logs if e.get("level") == "SEVERE"]
    # the page's own optional files a fresh, offline server lacks (user.css, favicon, userdata, api.comfy.org)
    # are network 404s of ComfyUI's frontend; any script error, and any failed request of this pack, counts
    ours = [e for e in severe if e.get("source") != "network" or "fashionchameleon" in e["message"].lower()]
    print(f"browser console: {len(logs)} messages, {len(severe)} errors, {len(ours)} of them script errors or this "
          f"pack's requests")
    for e in severe:
        print(f"  [{e.get('source')}] {e['message'][:240]}")
    if ours:
        failures.append(f"{len(ours)} browser console error(s) from scripts or this pack")
    if ms is not None:
        print(f"click -> first frame in the new garment (panel, route + websocket + generation): {ms} ms")
    if args.capture and shots:
        _write_capture(shots, Path(args.capture), args.capture_width)
    for f in failures:
        print(f"FAIL: {f}")
    print("PASS" if not failures else f"{len(failures)} failure(s)")
    return 0 if not failures else 1


def _write_capture(shots: list, path: Path, width: int) -> None:
    """An animated WebP of the panel screenshots (about 7 per second), scaled to `width` px."""
    from PIL import Image

    step = max(1, len(shots) // 120)  # at most ~120 frames
    frames = []
    for im in shots[::step]:
        h = round(im.height * width / im.width)
        frames.append(im.resize((width, h), Image.LANCZOS))
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=140 * step, loop=0, quality=70,
                   method=4)
    print(f"capture: {path} ({len(frames)} frames, {path.stat().st_size / 2 ** 20:.2f} MiB)")


if __name__ == "__main__":
    sys.exit(main())
