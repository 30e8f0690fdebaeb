// The smallest DOM the live wardrobe panel needs under node: elements with children, text, classes, dataset,
// style and listeners; a <select> whose value follows its options; document.head; window key listeners;
// requestAnimationFrame callbacks that the driver runs by hand. Installs itself on globalThis.

class Listeners {
  constructor() { this.listeners = []; }
  addEventListener(type, fn, options) { this.listeners.push({ type, fn, capture: options === true || !!options?.capture }); }
  removeEventListener(type, fn) { this.listeners = this.listeners.filter((l) => l.type !== type || l.fn !== fn); }
  // Call the listeners of `type` with a plain event object; returns the event (see defaultPrevented).
  dispatch(type, props = {}) {
    const ev = { type, target: this, defaultPrevented: false, propagationStopped: false, ...props,
      preventDefault() { this.defaultPrevented = true; }, stopPropagation() { this.propagationStopped = true; } };
    for (const l of this.listeners.filter((x) => x.type === type)) l.fn.call(this, ev);
    return ev;
  }
}

class Text {
  constructor(text) { this.textContent = String(text); this.parentNode = null; }
}

export class Element extends Listeners {
  constructor(tag) {
    super();
    this.tagName = tag.toUpperCase();
    this.children = [];
    this.parentNode = null;
    this.dataset = {};
    this.style = {};
    this._classes = new Set();
    const classes = this._classes;
    this.classList = {
      add: (...names) => names.forEach((n) => classes.add(n)),
      remove: (...names) => names.forEach((n) => classes.delete(n)),
      contains: (n) => classes.has(n),
      toggle: (n, force) => {
        const on = force === undefined ? !classes.has(n) : !!force;
        if (on) classes.add(n); else classes.delete(n);
        return on;
      },
    };
  }
  get className() { return [...this._classes].join(" "); }
  set className(v) { this._classes.clear(); for (const n of String(v).split(/\s+/)) if (n) this._classes.add(n); }
  get textContent() { return this.children.map((c) => c.textContent).join(""); }
  set textContent(v) { this.replaceChildren(); if (v !== null && v !== undefined && v !== "") this.append(String(v)); }
  append(...nodes) {
    for (let n of nodes) {
      if (!(n instanceof Element) && !(n instanceof Text)) n = new Text(n);
      if (n.parentNode) n.parentNode.children = n.parentNode.children.filter((c) => c !== n);
      n.parentNode = this;
      this.children.push(n);
    }
  }
  replaceChildren(...nodes) {
    for (const c of this.children) c.parentNode = null;
    this.children = [];
    this.append(...nodes);
  }
  click() {
    if (this.disabled) return; // a disabled control gets no click
    this.dispatch("click");
  }
}

class SelectElement extends Element {
  get options() { return this.children.filter((c) => c.tagName === "OPTION"); }
  get value() {
    const opts = this.options;
    const chosen = opts.find((o) => o.value === this._chosen);
    return chosen ? chosen.value : opts.length ? opts[0].value : "";
  }
  set value(v) { this._chosen = String(v); }
}

export const document = {
  createElement: (tag) => (tag.toLowerCase() === "select" ? new SelectElement(tag) : new Element(tag)),
  head: new Element("head"),
  body: new Element("body"),
};

export const window = new Listeners();

export const animationFrames = [];
// Run the callbacks queued so far at time `now` (ms); those they queue wait for the next call.
export function runAnimationFrames(now) {
  const due = animationFrames.splice(0);
  for (const cb of due) cb(now);
  return due.length;
}

Object.assign(globalThis, {
  document,
  window,
  requestAnimationFrame: (cb) => { animationFrames.push(cb); return animationFrames.length; },
});
