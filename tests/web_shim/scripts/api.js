// Stand-in for ComfyUI's scripts/api.js: records event subscriptions and fetchApi calls.
// The driver sets `api.answer(path, options)` to script the server's replies and fires events with `api.emit`,
// which calls the listeners directly (so an exception in one reaches the driver instead of being swallowed).
export const api = {
  listeners: [], // [type, fn]
  calls: [], // {path, method, headers, body}
  answer: () => ({ status: 404, body: { error: "no answer scripted" } }),
  addEventListener(type, fn) {
    this.listeners.push([type, fn]);
  },
  emit(type, detail) {
    let n = 0;
    for (const [t, fn] of this.listeners) if (t === type) { fn(new CustomEvent(type, { detail })); n++; }
    return n;
  },
  async fetchApi(path, options = {}) {
    const body = options.body;
    this.calls.push({ path, method: options.method || "GET", headers: options.headers || {},
      body: typeof body === "string" ? body : body instanceof Blob ? { blob: body.size, name: body.name } : body });
    const { status, body: data } = await this.answer(path, options); // an answer may be a promise (a late reply)
    return { ok: status >= 200 && status < 300, status, json: async () => data };
  },
};
