// Stand-in for ComfyUI's scripts/app.js: records the extensions registered and holds a fake graph.
export const app = {
  extensions: [],
  graph: { _nodes: [] },
  canvas: { selected_nodes: {} },
  registerExtension(ext) {
    this.extensions.push(ext);
  },
};
