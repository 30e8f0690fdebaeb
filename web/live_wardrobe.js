// FashionChameleon live wardrobe: a panel on every 'FashionChameleon stream generate' node.
//
// While the node runs it plays the chunks as they are made (the pack's websocket events
// fashionchameleon.live_start / live_chunk / live_end, see nodes/live_events.py) at the stream's
// frame rate, counts frames done and the generation FPS, and offers Stop (ends at the next chunk
// boundary, keeping the frames so far). The wardrobe's thumbnails switch the chosen slot, with the
// chosen rescheduling policy, from the next chunk: click one or press 1-9. A click shows as
// pending until the first chunk wearing it arrives. A garment dropped on the panel (or picked with
// 'add garment') is saved on the server, joins the running wardrobe and is listed in the node's
// 'wardrobe_uploads' so the saved workflow keeps it. After a run the panel shows the 'schedule'
// and can write it into 'switch_frames', which replays the run with the same seed.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_CLASS = "FashionChameleonStreamGenerate";
const ROUTE = "/fashionchameleon/live";
const MAX_BEHIND_S = 1.5; // playback drops frames when it falls further behind the stream than this
let activeNode = null; // the node id streaming now

const CSS = `
.fc-live { display: flex; flex-direction: column; gap: 4px; font: 12px sans-serif; color: var(--input-text, #ddd);
  width: 100%; height: 100%; box-sizing: border-box; padding: 2px; overflow: hidden; }
.fc-live .fc-screen { flex: 1 1 auto; min-height: 120px; background: #111; display: flex; align-items: center;
  justify-content: center; border-radius: 4px; overflow: hidden; }
.fc-live .fc-screen img { max-width: 100%; max-height: 100%; image-rendering: auto; }
.fc-live .fc-bar { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
.fc-live .fc-counter { font-variant-numeric: tabular-nums; margin-right: auto; }
.fc-live button, .fc-live select { font-size: 11px; padding: 1px 6px; }
.fc-live .fc-wardrobe { display: flex; gap: 4px; flex-wrap: wrap; min-height: 50px; padding: 3px;
  border: 1px dashed #666; border-radius: 4px; }
.fc-live .fc-wardrobe.fc-drop { border-color: #4af; background: rgba(64,160,255,.12); }
.fc-live .fc-thumb { position: relative; width: 46px; height: 46px; border: 2px solid transparent; border-radius: 3px;
  cursor: pointer; background: #fff; }
.fc-live .fc-thumb img { width: 100%; height: 100%; object-fit: contain; }
.fc-live .fc-thumb .fc-key { position: absolute; left: 1px; top: 0; font: bold 10px sans-serif; color: #000;
  text-shadow: 0 0 2px #fff; }
.fc-live .fc-thumb .fc-badge { position: absolute; right: 0; bottom: 0; font: 9px sans-serif; color: #fff;
  background: #555; padding: 0 2px; border-radius: 2px; }
.fc-live .fc-thumb.fc-pending { border-color: #fa0; animation: fc-blink .6s infinite alternate; }
.fc-live .fc-thumb.fc-worn { border-color: #3c6; }
.fc-live .fc-thumb.fc-later { opacity: .55; cursor: default; }
@keyframes fc-blink { from { border-color: #fa0; } to { border-color: #640; } }
.fc-live .fc-status { min-height: 15px; white-space: normal; }
.fc-live .fc-status.fc-error { color: #f66; }
.fc-live .fc-schedule { display: flex; gap: 4px; align-items: center; }
.fc-live .fc-schedule code { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; color: #9cf; }
`;

function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

function widget(node, name) {
  return node.widgets?.find((w) => w.name === name);
}

async function post(path, body, query = "") {
  const res = await api.fetchApi(`${ROUTE}/${path}${query}`, {
    method: "POST",
    headers: body instanceof Blob ? {} : { "Content-Type": "application/json" },
    body: body instanceof Blob ? body : JSON.stringify(body),
  });
  let data = {};
  try { data = await res.json(); } catch { data = { error: `the server answered ${res.status}` }; }
  if (!res.ok) throw new Error(data.error || `the server answered ${res.status}`);
  return data;
}

class Panel {
  constructor(node) {
    this.node = node;
    this.frames = []; // data URLs waiting to be shown
    this.fps = 16;
    this.nextAt = 0;
    this.promptId = null;
    this.running = false;
    this.slots = ["full", "upper", "lower"];
    this.wardrobe = []; // {thumb, later}
    this.pending = new Map(); // request id -> {index, slot}
    this.worn = new Map(); // slot -> wardrobe index
    this.settled = new Set(); // request ids a chunk already wore or superseded (its answer may come later)
    this.build();
    this.tick = this.tick.bind(this);
    requestAnimationFrame(this.tick);
  }

  get id() { return String(this.node.id); }

  build() {
    this.screen = el("img", { alt: "" });
    this.counter = el("span", { className: "fc-counter", textContent: "not running" });
    this.slot = el("select", { className: "fc-slot", title: "The slot a clicked garment replaces" });
    this.policy = el("select", { className: "fc-policy", title: "How the KV cache is rescheduled at the switch" });
    this.stopButton = el("button", { className: "fc-stop", textContent: "Stop", disabled: true,
      title: "End the stream at the next chunk boundary, keeping the frames so far" });
    this.stopButton.addEventListener("click", () => this.stop());
    this.file = el("input", { type: "file", accept: "image/*", multiple: true, style: "display:none" });
    this.file.addEventListener("change", () => { for (const f of this.file.files) this.upload(f); this.file.value = ""; });
    const add = el("button", { className: "fc-add", textContent: "add garment",
      title: "Upload a flat-lay into the wardrobe (or drop one on the thumbnails)" });
    add.addEventListener("click", () => this.file.click());
    this.thumbs = el("div", { className: "fc-wardrobe", title: "Click a garment (or press 1-9) to wear it from the next chunk; drop an image here to add one" });
    for (const ev of ["dragenter", "dragover"]) this.thumbs.addEventListener(ev, (e) => {
      e.preventDefault(); e.stopPropagation(); this.thumbs.classList.add("fc-drop"); });
    this.thumbs.addEventListener("dragleave", () => this.thumbs.classList.remove("fc-drop"));
    this.thumbs.addEventListener("drop", (e) => {
      e.preventDefault(); e.stopPropagation(); this.thumbs.classList.remove("fc-drop");
      for (const f of e.dataTransfer?.files || []) if (f.type.startsWith("image/")) this.upload(f);
    });
    this.status = el("div", { className: "fc-status", textContent: "Queue the workflow: the wardrobe and the live frames appear here." });
    this.scheduleText = el("code", { className: "fc-schedule-text" });
    this.useSchedule = el("button", { className: "fc-use-schedule", textContent: "use as schedule", disabled: true,
      title: "Write this run's schedule into 'switch_frames': queueing again replays it bit for bit (same seed)" });
    this.useSchedule.addEventListener("click", () => this.applySchedule());
    this.root = el("div", { className: "fc-live" }, [
      el("div", { className: "fc-screen" }, [this.screen]),
      el("div", { className: "fc-bar" }, [this.counter, this.stopButton]),
      el("div", { className: "fc-bar" }, [el("span", { textContent: "slot" }), this.slot,
        el("span", { textContent: "policy" }), this.policy, add, this.file]),
      this.thumbs,
      this.status,
      el("div", { className: "fc-schedule" }, [el("span", { textContent: "schedule" }), this.scheduleText, this.useSchedule]),
    ]);
    this.setSlots(this.slots);
    this.setPolicies(["full (refresh + withdraw + disentangle)", "refresh + withdraw", "refresh only"]);
  }

  setSlots(slots) {
    const keep = this.slot.value;
    this.slots = slots;
    this.slot.replaceChildren(...slots.map((s) => el("option", { value: s, textContent: s })));
    if (slots.includes(keep)) this.slot.value = keep;
  }

  setPolicies(policies) {
    const keep = this.policy.value;
    this.policy.replaceChildren(...policies.map((p) => el("option", { value: p, textContent: p.split(" (")[0] })));
    if (policies.includes(keep)) this.policy.value = keep;
  }

  say(text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle("fc-error", error);
  }

  renderWardrobe() {
    this.thumbs.replaceChildren(...this.wardrobe.map((g, i) => {
      const t = el("div", { className: "fc-thumb", title: g.later ? "joins the wardrobe on the next run"
        : `garment ${i} of the wardrobe${i < 9 ? ` (key ${i + 1})` : ""}` },
        [el("img", { src: g.thumb }), el("span", { className: "fc-key", textContent: i < 9 ? String(i + 1) : "" })]);
      t.dataset.index = String(i);
      if (g.later) t.classList.add("fc-later");
      for (const p of this.pending.values()) if (p.index === i) {
        t.classList.add("fc-pending");
        t.append(el("span", { className: "fc-badge", textContent: `${p.slot}: next chunk` }));
      }
      for (const [slot, idx] of this.worn) if (idx === i && !t.classList.contains("fc-pending")) {
        t.classList.add("fc-worn");
        t.append(el("span", { className: "fc-badge", textContent: slot }));
      }
      if (!g.later) t.addEventListener("click", () => this.request(i));
      return t;
    }));
  }

  // ------------------------------------------------------------------ requests
  async request(index) {
    const slot = this.slot.value;
    if (!this.running) {
      this.say(`Not streaming: queue the workflow, then pick a garment while this node runs.`, true);
      return;
    }
    try {
      const r = await post("switch", { node_id: this.id, prompt_id: this.promptId, index, slot,
                                       policy: this.policy.value });
      if (this.running && !this.settled.has(r.request)) {
        this.pending.set(r.request, { index, slot, at: performance.now() });
        this.say(`Garment ${index + 1} → ${slot}: from the next chunk…`);
        this.renderWardrobe();
      }
    } catch (err) {
      this.say(String(err.message || err), true);
    }
  }

  async stop() {
    try {
      await post("stop", { node_id: this.id, prompt_id: this.promptId });
      this.stopButton.disabled = true;
      this.say("Stopping at the next chunk boundary; the frames so far are kept.");
    } catch (err) {
      this.say(String(err.message || err), true);
    }
  }

  async upload(file) {
    try {
      const r = await post("garment", file, `?node_id=${encodeURIComponent(this.id)}&filename=${encodeURIComponent(file.name)}`);
      const uploads = widget(this.node, "wardrobe_uploads");
      if (uploads) {
        const names = String(uploads.value || "").split(",").map((s) => s.trim()).filter(Boolean);
        if (!names.includes(r.file)) names.push(r.file);
        uploads.value = names.join(", ");
        this.node.setDirtyCanvas?.(true, true);
      }
      const thumb = URL.createObjectURL(file);
      if (r.index !== null && r.index !== undefined) {
        this.wardrobe[r.index] = { thumb, later: false };
        this.say(`Added ${file.name} to the wardrobe as garment ${r.index + 1}.`);
      } else {
        this.wardrobe.push({ thumb, later: true });
        this.say(`Saved ${file.name}; it joins the wardrobe when the workflow runs.`);
      }
      this.renderWardrobe();
    } catch (err) {
      this.say(String(err.message || err), true);
    }
  }

  applySchedule() {
    const w = widget(this.node, "switch_frames");
    const text = this.scheduleText.textContent;
    if (!w) { this.say("This node has no 'switch_frames' widget (is it converted to an input?).", true); return; }
    w.value = text;
    this.node.setDirtyCanvas?.(true, true);
    this.say("The schedule is in 'switch_frames': queue again (same seed) to replay this run.");
  }

  // ------------------------------------------------------------------ events
  onStart(d) {
    this.root.dataset.node = this.id;
    this.root.dataset.state = "running";
    this.promptId = d.prompt_id;
    this.running = true;
    this.fps = d.fps || 16;
    this.frames = [];
    this.pending.clear();
    this.worn.clear();
    this.settled.clear();
    this.setSlots(d.slots);
    this.setPolicies(d.policies);
    this.wardrobe = d.wardrobe.map((thumb) => ({ thumb, later: false }));
    this.stopButton.disabled = false;
    this.counter.textContent = "0 frames";
    this.say(this.wardrobe.length ? `Streaming. Click a garment or press 1-${Math.min(9, this.wardrobe.length)}.`
      : "Streaming. Connect images to 'wardrobe' to switch garments live.");
    this.renderWardrobe();
  }

  onChunk(d) {
    this.frames.push(...d.frames);
    this.fps = d.fps || this.fps;
    const gen = d.elapsed_s > 0 ? d.frames_done / d.elapsed_s : 0;
    this.counter.textContent = `${d.frames_done} frames · ${gen.toFixed(1)} FPS`;
    this.counter.dataset.frames = String(d.frames_done);
    for (const a of d.applied) {
      this.settled.add(a.request);
      const p = this.pending.get(a.request);
      this.pending.delete(a.request);
      this.worn.set(a.slot, a.index);
      const ms = p ? Math.round(performance.now() - p.at) : null;
      this.say(`Garment ${a.index + 1} in ${a.slot} from frame ${d.first_frame}` + (ms !== null ? ` (${ms} ms after the click).` : "."));
    }
    for (const id of d.superseded) {
      this.settled.add(id);
      this.pending.delete(id);
    }
    if (d.applied.length || d.superseded.length) this.renderWardrobe();
  }

  onEnd(d) {
    this.running = false;
    this.stopButton.disabled = true;
    for (const id of d.carried) this.pending.delete(id);
    this.pending.clear();
    this.renderWardrobe();
    this.scheduleText.textContent = d.schedule;
    this.scheduleText.title = d.schedule;
    this.useSchedule.disabled = !d.schedule;
    const what = d.cancelled ? "Cancelled: the running chunk was discarded." : d.stopped ? `Stopped after ${d.frames_done} frames.`
      : `Done: ${d.frames_done} frames.`;
    this.say(what + (d.carried.length ? " The last request waits in the output stream for its next chunk." : ""));
    this.root.dataset.state = d.cancelled ? "cancelled" : d.stopped ? "stopped" : "done";
  }

  // ------------------------------------------------------------------ playback at the stream's rate
  tick(now) {
    if (this.removed) return;
    const period = 1000 / this.fps;
    if (this.frames.length) {
      const behind = this.frames.length / this.fps;
      if (behind > MAX_BEHIND_S) this.frames.splice(0, this.frames.length - Math.ceil(this.fps * 0.5));
      if (now >= this.nextAt) {
        this.screen.src = this.frames.shift();
        this.nextAt = Math.max(this.nextAt + period, now - period);
      }
    } else {
      this.nextAt = now;
    }
    requestAnimationFrame(this.tick);
  }
}

function panelFor(id) {
  if (id === null || id === undefined) return null;
  const nodes = app.graph?._nodes || app.graph?.nodes || [];
  return nodes.find((n) => String(n.id) === String(id))?.fcLivePanel || null;
}

app.registerExtension({
  name: "FashionChameleon.LiveWardrobe",
  setup() {
    document.head.append(el("style", { textContent: CSS }));
    api.addEventListener("fashionchameleon.live_start", ({ detail }) => {
      activeNode = String(detail.node);
      panelFor(detail.node)?.onStart(detail);
    });
    api.addEventListener("fashionchameleon.live_chunk", ({ detail }) => panelFor(detail.node)?.onChunk(detail));
    api.addEventListener("fashionchameleon.live_end", ({ detail }) => {
      if (activeNode === String(detail.node)) activeNode = null;
      panelFor(detail.node)?.onEnd(detail);
    });
    window.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || !/^[1-9]$/.test(e.key)) return;
      const t = e.target;
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
      const selected = Object.keys(app.canvas?.selected_nodes || {});
      const panel = panelFor(activeNode) || (selected.length === 1 ? panelFor(selected[0]) : null);
      if (!panel || !panel.running) return;
      e.preventDefault();
      e.stopPropagation();
      panel.request(Number(e.key) - 1);
    }, true);
  },
  nodeCreated(node) {
    if (node.comfyClass !== NODE_CLASS) return;
    const panel = new Panel(node);
    node.fcLivePanel = panel;
    node.addDOMWidget("live_wardrobe", "fc_live", panel.root, { serialize: false, hideOnZoom: false,
      getMinHeight: () => 330, getHeight: () => 330 });
    const size = node.computeSize();
    node.setSize([Math.max(size[0], 380), Math.max(size[1], node.size?.[1] || 0)]);
    const removed = node.onRemoved;
    node.onRemoved = function () { panel.removed = true; return removed?.apply(this, arguments); };
  },
});
