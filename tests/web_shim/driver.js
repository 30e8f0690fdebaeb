// Runs web/live_wardrobe.js on the shims and writes what it did as JSON (the pytest side judges it).
//   node driver.js SCENARIO.json EXTENSION.js REPORT.json
// SCENARIO: {node_id, other_class, click, key, late, events: {start, chunk1, chunk2, chunk3, end, foreign_chunk},
//            garment_answer}
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { document, window, runAnimationFrames, animationFrames, Element } from "./dom.js";
import { app } from "./scripts/app.js";
import { api } from "./scripts/api.js";

const [scenarioPath, extensionPath, reportPath] = process.argv.slice(2);
const scenario = JSON.parse(readFileSync(scenarioPath, "utf8"));
const report = { steps: [] };
const save = () => writeFileSync(reportPath, JSON.stringify(report, null, 1));
const flush = () => new Promise((r) => setTimeout(r, 0));

function walk(e, out = []) {
  if (e instanceof Element) { out.push(e); for (const c of e.children) walk(c, out); }
  return out;
}
const byClass = (root, cls) => walk(root).filter((e) => e.classList.contains(cls));
const one = (root, cls) => byClass(root, cls)[0];

// The server's answers to the panel's POSTs: switch requests numbered 1, 2, ... (as LiveControl numbers them).
let nextRequest = 1;
api.answer = (path, options) => {
  if (path === "/fashionchameleon/live/switch") {
    const b = JSON.parse(options.body);
    return { status: 200, body: { request: nextRequest++, index: b.index, slot: b.slot, policy: "full", frames_done: 0 } };
  }
  if (path === "/fashionchameleon/live/stop") return { status: 200, body: { stopping: true, frames_done: 0 } };
  if (path.startsWith("/fashionchameleon/live/garment?")) return { status: 200, body: scenario.garment_answer };
  return { status: 404, body: { error: `no route ${path}` } };
};

function panelView(node) {
  const p = node.fcLivePanel;
  const root = p.root;
  return {
    state: root.dataset.state ?? null,
    running: p.running,
    counter: one(root, "fc-counter").textContent,
    counterFrames: one(root, "fc-counter").dataset.frames ?? null,
    status: one(root, "fc-status").textContent,
    statusError: one(root, "fc-status").classList.contains("fc-error"),
    stopDisabled: !!one(root, "fc-stop").disabled,
    slots: one(root, "fc-slot").options.map((o) => o.value),
    slot: one(root, "fc-slot").value,
    policies: one(root, "fc-policy").options.map((o) => [o.value, o.textContent]),
    policy: one(root, "fc-policy").value,
    thumbs: byClass(root, "fc-thumb").map((t) => ({
      index: t.dataset.index, classes: t.className, src: walk(t).find((e) => e.tagName === "IMG")?.src ?? null,
      key: one(t, "fc-key")?.textContent ?? null, badges: byClass(t, "fc-badge").map((b) => b.textContent) })),
    schedule: one(root, "fc-schedule-text").textContent,
    useScheduleDisabled: !!one(root, "fc-use-schedule").disabled,
    queued: p.frames.length,
    screen: walk(root).find((e) => e.tagName === "IMG")?.src ?? null,
  };
}

async function step(name, fn) {
  const entry = { name };
  report.steps.push(entry);
  const callsBefore = api.calls.length;
  try {
    Object.assign(entry, (await fn()) || {});
    await flush();
  } catch (err) {
    entry.error = String(err?.stack || err);
    report.failed = name;
  }
  entry.calls = api.calls.slice(callsBefore);
  save();
  if (entry.error) process.exit(0);
}

const key = (k, extra = {}) => window.dispatch("keydown", { key: k, ctrlKey: false, metaKey: false, altKey: false, ...extra });

function fakeNode(id, comfyClass) {
  return {
    id, comfyClass, size: [320, 240], domWidgets: [], sizes: [],
    widgets: [{ name: "switch_frames", value: "" }, { name: "wardrobe_uploads", value: "coat_0123456789.png" }],
    addDOMWidget(name, type, element, options) { this.domWidgets.push({ name, type, element, options }); },
    computeSize() { return [300, 260]; },
    setSize(s) { this.sizes.push(s); this.size = s; },
    setDirtyCanvas() { this.dirty = (this.dirty || 0) + 1; },
  };
}

const ev = scenario.events;
let node;

await step("load", async () => {
  await import(pathToFileURL(extensionPath).href);
  return { extensions: app.extensions.map((e) => ({ name: e.name, hooks: Object.keys(e).filter((k) => typeof e[k] === "function") })) };
});

await step("setup", async () => {
  app.extensions[0].setup();
  return { api: api.listeners.map(([t]) => t), window: window.listeners.map((l) => [l.type, l.capture]),
           head: document.head.children.map((c) => [c.tagName, c.textContent.includes(".fc-live")]) };
});

await step("other node", async () => {
  const other = fakeNode(7, scenario.other_class);
  app.graph._nodes.push(other);
  app.extensions[0].nodeCreated(other);
  return { domWidgets: other.domWidgets.length, panel: !!other.fcLivePanel, sizes: other.sizes.length };
});

await step("node", async () => {
  node = fakeNode(Number(scenario.node_id), "FashionChameleonStreamGenerate");
  app.graph._nodes.push(node);
  app.extensions[0].nodeCreated(node);
  const w = node.domWidgets[0];
  return { domWidgets: node.domWidgets.length, widget: w && { name: w.name, type: w.type, root: w.element.className,
    isPanelRoot: w.element === node.fcLivePanel?.root, serialize: w.options.serialize, height: w.options.getHeight?.(),
    minHeight: w.options.getMinHeight?.() }, sizes: node.sizes, panel: panelView(node), rafQueued: animationFrames.length };
});

await step("key before start", async () => {
  const e = key("1");
  return { prevented: e.defaultPrevented };
});

await step("start", async () => ({ listeners: api.emit("fashionchameleon.live_start", ev.start), panel: panelView(node) }));

await step("chunk1", async () => {
  const n = api.emit("fashionchameleon.live_chunk", ev.chunk1);
  const before = panelView(node);
  runAnimationFrames(1000);
  const first = node.fcLivePanel.screen.src ?? null;
  runAnimationFrames(1000 + 1000 / ev.chunk1.fps + 1);
  const second = node.fcLivePanel.screen.src ?? null;
  return { listeners: n, before, first, second, after: panelView(node) };
});

await step("click thumb", async () => {
  node.fcLivePanel.slot.value = scenario.click.slot;
  byClass(node.fcLivePanel.root, "fc-thumb")[scenario.click.index].click();
  await flush();
  return { panel: panelView(node) };
});

await step("ignored keys", async () => {
  const input = document.createElement("input");
  return { prevented: [key("1", { ctrlKey: true }), key("a"), key("0"), key("1", { target: input })].map((e) => e.defaultPrevented) };
});

await step("key", async () => {
  const e = key(scenario.key);
  await flush();
  return { prevented: e.defaultPrevented, panel: panelView(node) };
});

await step("foreign chunk", async () => {
  const before = panelView(node).counter;
  api.emit("fashionchameleon.live_chunk", ev.foreign_chunk);
  return { unchanged: panelView(node).counter === before };
});

await step("chunk2", async () => ({ listeners: api.emit("fashionchameleon.live_chunk", ev.chunk2), panel: panelView(node) }));

await step("late answer", async () => {
  // the chunk that wears a request arrives before the answer to its POST: the thumbnail must not stay pending
  const answer = api.answer;
  let release;
  api.answer = (path, options) => (path === "/fashionchameleon/live/switch"
    ? new Promise((r) => { release = () => r(answer(path, options)); }) : answer(path, options));
  byClass(node.fcLivePanel.root, "fc-thumb")[scenario.late.index].click();
  await flush();
  api.emit("fashionchameleon.live_chunk", ev.chunk3);
  release();
  await flush(); await flush();
  api.answer = answer;
  return { panel: panelView(node) };
});

await step("drop garment", async () => {
  const file = new File([new Uint8Array([137, 80, 78, 71])], "my shirt.png", { type: "image/png" });
  const e = node.fcLivePanel.thumbs.dispatch("drop", { dataTransfer: { files: [file] } });
  await flush(); await flush();
  return { prevented: e.defaultPrevented, uploads: node.widgets[1].value, panel: panelView(node) };
});

await step("stop", async () => {
  one(node.fcLivePanel.root, "fc-stop").click();
  await flush();
  return { panel: panelView(node) };
});

await step("end", async () => ({ listeners: api.emit("fashionchameleon.live_end", ev.end), panel: panelView(node) }));

await step("after end", async () => {
  const e = key("1");
  byClass(node.fcLivePanel.root, "fc-thumb")[0].click();
  await flush();
  return { prevented: e.defaultPrevented, panel: panelView(node) };
});

await step("use schedule", async () => {
  one(node.fcLivePanel.root, "fc-use-schedule").click();
  return { switchFrames: node.widgets[0].value };
});

await step("removed", async () => {
  node.onRemoved();
  runAnimationFrames(5000);
  return { rafQueued: animationFrames.length };
});

report.done = true;
save();
