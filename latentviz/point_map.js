// The Latent Map's renderer, shared by the app's map component and the static site: a million points
// drawn into a canvas's pixels by plain JavaScript (no WebGL, no plotting library), with what a map
// viewer needs around them: pan and wheel zoom, box and lasso selection, hover and click on the point
// under the pointer, a legend that hides colours, marks drawn over the points (search matches, a
// chosen text and its neighbours, placed texts), a density layer of contour lines, and the areas'
// names for the zoom level. Why our own: plotly.js took about a second to load and run before
// drawing anything (0.5-0.6 s of main-thread work in a blank page, more inside the app), and 1.3 s
// to redraw 200,000 points; here a draw is one pass over typed arrays (tens of milliseconds at a
// million) and the script is a few KB. Every text is put on the page with textContent.
//
// Points come as typed arrays with their colours' traces (setPoints); marks and the density layer as
// Plotly-style traces ({name, x, y, customdata, marker: {color, size, symbol, line}, mode, text}: what
// charts.map_overlays and charts.map_density build), arrays as lists or Plotly's binary {dtype, bdata}.
"use strict";

const POINT_MAP_CSS = `
.pm { position: relative; font-family: sans-serif; user-select: none; }
.pm-legend { display: flex; flex-wrap: wrap; gap: 2px 12px; padding: 4px 6px; font-size: 12px; color: #333; min-height: 18px; }
.pm-legend .item { display: inline-flex; align-items: center; gap: 4px; cursor: default; white-space: nowrap; }
.pm-legend.base .item { cursor: pointer; }
.pm-legend .item.off { opacity: 0.35; }
.pm-plot { position: relative; overflow: hidden; cursor: crosshair; touch-action: none; }
.pm-plot.pan { cursor: grab; }
.pm-plot canvas { position: absolute; left: 0; top: 0; }
.pm-names { position: absolute; inset: 0; pointer-events: none; }
.pm-names div { position: absolute; transform: translate(-50%, -50%); padding: 0 2px; border-radius: 2px;
  background: rgba(255,255,255,0.65); color: #1a1a1a; white-space: nowrap; }
.pm-modes { position: absolute; right: 4px; top: 4px; display: flex; gap: 2px; z-index: 4; }
.pm-modes button { font-size: 11px; padding: 2px 6px; border: 1px solid #ccc; border-radius: 3px; background: rgba(255,255,255,0.9);
  color: #444; cursor: pointer; }
.pm-modes button[aria-pressed="true"] { background: #e8eefc; border-color: #8aa4e0; }
.pm-layers { position: absolute; right: 4px; bottom: 4px; z-index: 5; display: flex; gap: 4px; }
.pm-layers button { font-size: 12px; padding: 3px 8px; border: 1px solid #ccc; border-radius: 4px; background: #fff;
  color: #333; cursor: pointer; }
.pm-layers button[aria-pressed="true"] { background: #e8eefc; border-color: #8aa4e0; }
`;

// ---- data --------------------------------------------------------------------------------------------
const DTYPES = {f4: Float32Array, f8: Float64Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array, u2: Uint16Array,
  i1: Int8Array, u1: Uint8Array};

function arrayOf(value) {  // a plain list, or Plotly's binary array (base64 of little-endian values)
  if (!value) return [];
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return value;
  const bytes = Uint8Array.from(atob(value.bdata), c => c.charCodeAt(0));
  return new DTYPES[value.dtype](bytes.buffer);
}

function rowsOf(value) {  // a 2-D array: a list of rows, or a binary one with its shape ("rows, columns")
  if (Array.isArray(value)) return value;
  const flat = arrayOf(value), columns = Number(String(value.shape).split(",")[1]);
  const rows = [];
  for (let start = 0; start < flat.length; start += columns) rows.push(flat.subarray(start, start + columns));
  return rows;
}

const colourCanvas = document.createElement("canvas").getContext("2d", {willReadFrequently: true});
function rgbOf(css) {  // any CSS colour, as [r, g, b]
  colourCanvas.clearRect(0, 0, 1, 1);
  colourCanvas.fillStyle = css;
  colourCanvas.fillRect(0, 0, 1, 1);
  return Array.from(colourCanvas.getImageData(0, 0, 1, 1).data.slice(0, 3));
}

// ---- area names --------------------------------------------------------------------------------------
// projection.map_labels gives them, coarse and large first. Level l (four times the areas of level
// l - 1, each half as wide) shows from 2^(l - 1/2) times the whole map's zoom (`home`); a name that
// would overlap one already placed, or leave the view, is left out, so a crowded view keeps the broad names.
const AREA_NAME_SIZES = [15, 13, 11];  // px, by level

function areaNames(names, home, view) {  // view: {x: [x0, x1], y: [y0, y1], w, h}; returns names placed in px
  if (!names || !home) return [];
  const [x0, x1] = view.x, [y0, y1] = view.y;
  const zoom = Math.min((home.x[1] - home.x[0]) / (x1 - x0), (home.y[1] - home.y[0]) / (y1 - y0));
  const deepest = Math.floor(Math.log2(Math.max(zoom, 1)) + 0.5);
  const boxes = [], placed = [];
  for (const name of names) {
    if (name.level > deepest) continue;
    const size = AREA_NAME_SIZES[Math.min(name.level, AREA_NAME_SIZES.length - 1)];
    const px = (name.x - x0) / (x1 - x0) * view.w, py = (y1 - name.y) / (y1 - y0) * view.h;
    const half = {x: name.text.length * size * 0.3 + 4, y: size * 0.7 + 2};  // about half a name's box
    const box = [px - half.x, py - half.y, px + half.x, py + half.y];
    if (box[0] < 0 || box[1] < 0 || box[2] > view.w || box[3] > view.h) continue;
    if (boxes.some(b => box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3])) continue;
    boxes.push(box);
    placed.push({text: name.text, px, py, size, bold: name.level === 0});
  }
  return placed;
}

// ---- density contours (marching squares) -------------------------------------------------------------
// Segments where z crosses `level` on a grid of values at (xs[i], ys[j]), z[j][i]; each as [x0, y0, x1, y1].
function contourSegments(z, xs, ys, level) {
  const segments = [];
  const cross = (a, b, za, zb) => a + (b - a) * (level - za) / (zb - za);
  for (let j = 0; j + 1 < ys.length; j++) {
    for (let i = 0; i + 1 < xs.length; i++) {
      const a = z[j][i], b = z[j][i + 1], c = z[j + 1][i + 1], d = z[j + 1][i];  // corners, anticlockwise
      const code = (a > level ? 1 : 0) | (b > level ? 2 : 0) | (c > level ? 4 : 0) | (d > level ? 8 : 0);
      if (code === 0 || code === 15) continue;
      const bottom = [cross(xs[i], xs[i + 1], a, b), ys[j]], right = [xs[i + 1], cross(ys[j], ys[j + 1], b, c)];
      const top = [cross(xs[i], xs[i + 1], d, c), ys[j + 1]], left = [xs[i], cross(ys[j], ys[j + 1], a, d)];
      const edges = {1: [bottom, left], 2: [bottom, right], 3: [left, right], 4: [right, top], 6: [bottom, top],
        7: [left, top], 8: [left, top], 9: [bottom, top], 11: [right, top], 12: [left, right], 13: [bottom, right],
        14: [bottom, left], 5: [bottom, right, left, top], 10: [bottom, left, right, top]}[code];
      for (let e = 0; e < edges.length; e += 2) segments.push([...edges[e], ...edges[e + 1]]);
    }
  }
  return segments;
}

// The grid with a border of zeros a cell wide: lines that reach its edge close around it, not cut off.
function padded(z, xs, ys) {
  const step = values => (values.length > 1 ? values[1] - values[0] : 1);
  const wider = values => [values[0] - step(values), ...values, values[values.length - 1] + step(values)];
  const zeros = new Array(xs.length + 2).fill(0);
  return [[zeros, ...Array.from(z, row => [0, ...row, 0]), zeros], wider(Array.from(xs)), wider(Array.from(ys))];
}

// ---- the map -----------------------------------------------------------------------------------------
const UNSELECTED_ALPHA = 0.2;  // points outside a selection fade to this share of their opacity
const HOVER_RADIUS = 6;  // px: how near the pointer a point must be to be hovered or clicked

class PointMap {
  // root: an empty element; options: {height, mode ("select", "lasso" or "pan"), text(id) → Promise<string>,
  // onClick(id), onSelect(ids or null), onHidden(names), onWheelPassed() (the page scrolled instead)}
  constructor(root, options) {
    if (!document.getElementById("pm-style")) {
      document.head.appendChild(Object.assign(document.createElement("style"), {id: "pm-style", textContent: POINT_MAP_CSS}));
    }
    this.options = options;
    this.height = options.height;
    this.mode = options.mode || "select";
    root.classList.add("pm");
    const part = (tag, className, children = []) => {
      const element = document.createElement(tag);
      element.className = className;
      element.append(...children);
      return element;
    };
    root.replaceChildren(part("div", "pm-legend marks"), part("div", "pm-plot", [part("canvas", "points"),
      part("canvas", "marks"), part("div", "pm-names"), part("div", "pm-modes"), part("div", "pm-layers")]),
      part("div", "pm-legend base"));
    this.root = root;
    this.plot = root.querySelector(".pm-plot");
    this.pointsCanvas = root.querySelector("canvas.points");
    this.marksCanvas = root.querySelector("canvas.marks");
    this.traces = [];      // {name, css, rgb, alpha, size, start, end}: trace t's points are [start, end)
    this.count = 0;        // points drawn
    this.hidden = new Set();  // trace indices turned off in the legend
    this.selected = null;  // Uint8Array over the points, or null when nothing is selected
    this.marks = [];       // the marks' traces, as given
    this.density = null;   // a contour trace
    this.showDensity = false;
    this.names = [];       // area names (projection.map_labels)
    this.showNames = true;
    this.dim = 0;          // 0..1: how far the points fade under the marks (a search)
    this.view = null;      // {x: [x0, x1], y: [y0, y1]}
    this.home = null;
    this.modeButtons();
    this.addButton("names", "Area names", "The areas' names, finer as you zoom in", true, on => { this.showNames = on; this.drawNames(); });
    this.addButton("density", "Density", "Contour lines where the texts lie thickest", false, on => { this.showDensity = on; this.drawMarks(); });
    this.listen();
  }

  // A button at the map's lower right: a switch (`pressed` true or false: onClick gets its new state) or,
  // with `pressed` null, a plain one.
  addButton(id, label, title, pressed, onClick) {
    const button = Object.assign(document.createElement("button"), {id, type: "button", textContent: label, title});
    if (pressed !== null) button.setAttribute("aria-pressed", String(pressed));
    button.addEventListener("click", () => {
      const on = button.getAttribute("aria-pressed") !== "true";
      if (pressed !== null) button.setAttribute("aria-pressed", String(on));
      onClick(on);
    });
    this.root.querySelector(".pm-layers").appendChild(button);
    return button;
  }

  // Points: {traces: [{name, color, opacity, size, count}], x, y, ids}, the arrays trace by trace (typed
  // arrays or lists). The view stays where it was unless their extent changed (a new map, not a new colouring).
  setPoints(points) {
    this.x = Float32Array.from(points.x); this.y = Float32Array.from(points.y); this.ids = Float64Array.from(points.ids);
    this.count = this.x.length;
    this.traceOf = new Uint16Array(this.count);
    let start = 0;
    this.traces = points.traces.map((trace, t) => {
      this.traceOf.fill(t, start, start + trace.count);
      start += trace.count;
      return {name: String(trace.name), css: trace.color, rgb: rgbOf(trace.color), alpha: trace.opacity ?? 1,
        size: trace.size || 3, start: start - trace.count, end: start};
    });
    this.hidden = new Set();  // a new colouring shows every colour
    this.selected = null;
    const home = this.extent();
    if (!this.home || home.x.join() !== this.home.x.join() || home.y.join() !== this.home.y.join()) {
      this.home = home;
      this.view = {x: home.x.slice(), y: home.y.slice()};
    }
    this.drawLegend();
    this.drawPoints();
    this.drawMarks();
  }

  extent() {  // the points' bounds, with a margin of 4% a side
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < this.count; i++) {
      const x = this.x[i], y = this.y[i];
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    if (!(x1 > x0)) { x0 -= 1; x1 += 1; }
    if (!(y1 > y0)) { y0 -= 1; y1 += 1; }
    const mx = (x1 - x0) * 0.04, my = (y1 - y0) * 0.04;
    return {x: [x0 - mx, x1 + mx], y: [y0 - my, y1 + my]};
  }

  setMarks(marks, dim) { this.marks = marks; this.dim = dim || 0; this.drawMarks(); }
  setDensity(density) { this.density = density; this.drawMarks(); }
  setNames(names) { this.names = names || []; this.drawNames(); }
  setHeight(height) { if (height !== this.height) { this.height = height; this.drawPoints(); this.drawMarks(); } }

  // ---- drawing ----
  size() { return {w: Math.max(this.plot.clientWidth, 1), h: this.height, ratio: window.devicePixelRatio || 1}; }

  toPixels(x, y) {  // data → CSS px in the plot
    const {w, h} = this.size(), v = this.view;
    return [(x - v.x[0]) / (v.x[1] - v.x[0]) * w, (v.y[1] - y) / (v.y[1] - v.y[0]) * h];
  }

  fromPixels(px, py) {
    const {w, h} = this.size(), v = this.view;
    return [v.x[0] + px / w * (v.x[1] - v.x[0]), v.y[1] - py / h * (v.y[1] - v.y[0])];
  }

  // Every visible point, in trace order, blended into the canvas's pixels as a small disc; `pick`
  // keeps, per pixel, the point drawn last there, for hover and click.
  drawPoints() {
    const {w, h, ratio} = this.size();
    const W = Math.round(w * ratio), H = Math.round(h * ratio);
    this.plot.style.height = h + "px";
    for (const canvas of [this.pointsCanvas, this.marksCanvas]) {
      if (canvas.width !== W || canvas.height !== H) { canvas.width = W; canvas.height = H; }
      canvas.style.width = w + "px"; canvas.style.height = h + "px";
      canvas.style.transform = "";
    }
    if (!this.view) return;
    const context = this.pointsCanvas.getContext("2d");
    const image = context.createImageData(W, H), pixels = image.data;
    new Uint32Array(pixels.buffer).fill(0xFFFFFFFF);  // white
    if (!this.pick || this.pick.length !== W * H) this.pick = new Int32Array(W * H);
    const pick = this.pick.fill(-1);
    const v = this.view, sx = W / (v.x[1] - v.x[0]), sy = H / (v.y[1] - v.y[0]), x0 = v.x[0], y1 = v.y[1];
    const X = this.x, Y = this.y, selected = this.selected;
    this.traces.forEach((trace, t) => {
      if (this.hidden.has(t)) return;
      const diameter = Math.max(1, Math.round(trace.size * ratio)), r = (diameter - 1) / 2;
      const offsets = [];  // the disc's pixels, as offsets from its centre's pixel
      for (let dy = -Math.ceil(r); dy <= Math.ceil(r); dy++) {
        for (let dx = -Math.ceil(r); dx <= Math.ceil(r); dx++) {
          if (dx * dx + dy * dy <= r * r + r + 0.5) offsets.push([dx, dy]);
        }
      }
      const reach = Math.ceil(r), flat = Int32Array.from(offsets, ([dx, dy]) => dy * W + dx);
      const [red, green, blue] = trace.rgb;
      for (const faded of selected ? [true, false] : [false]) {  // a selection's points over the rest
        const alpha = trace.alpha * (faded ? UNSELECTED_ALPHA : 1);
        for (let i = trace.start; i < trace.end; i++) {
          if (selected && (selected[i] === 1) === faded) continue;
          const px = Math.floor((X[i] - x0) * sx), py = Math.floor((y1 - Y[i]) * sy);
          if (px < -reach || py < -reach || px >= W + reach || py >= H + reach) continue;
          const inside = px >= reach && py >= reach && px < W - reach && py < H - reach;
          const centre = py * W + px;
          for (let k = 0; k < flat.length; k++) {
            if (!inside) {
              const qx = px + offsets[k][0], qy = py + offsets[k][1];
              if (qx < 0 || qy < 0 || qx >= W || qy >= H) continue;
            }
            const p = centre + flat[k], q = p * 4;
            pixels[q] += (red - pixels[q]) * alpha;
            pixels[q + 1] += (green - pixels[q + 1]) * alpha;
            pixels[q + 2] += (blue - pixels[q + 2]) * alpha;
            if (!faded) pick[p] = i;
          }
        }
      }
    });
    context.putImageData(image, 0, 0);
    this.drawNames();
  }

  drawNames() {
    const layer = this.root.querySelector(".pm-names");
    if (!this.view) return;
    const {w, h} = this.size();
    const placed = this.showNames ? areaNames(this.names, this.home, {x: this.view.x, y: this.view.y, w, h}) : [];
    layer.replaceChildren(...placed.map(name => {
      const div = document.createElement("div");
      div.textContent = name.text;
      Object.assign(div.style, {left: name.px + "px", top: name.py + "px", fontSize: name.size + "px", fontWeight: name.bold ? "bold" : "normal"});
      return div;
    }));
    this.placedNames = placed.map(name => name.text);
  }

  // The marks' canvas: the fade under a search, the density lines, the marks, a selection being drawn.
  drawMarks() {
    const {w, h, ratio} = this.size();
    const context = this.marksCanvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, w, h);
    if (!this.view) return;
    if (this.dim) {
      context.fillStyle = `rgba(255,255,255,${this.dim})`;
      context.fillRect(0, 0, w, h);
    }
    this.densityLines = 0;  // contour segments drawn, for the tests
    if (this.showDensity && this.density) this.drawDensity(context);
    for (const mark of this.marks) this.drawMark(context, mark);
    if (this.drawing) {
      context.strokeStyle = "#333"; context.setLineDash([4, 3]); context.lineWidth = 1;
      context.fillStyle = "rgba(120,150,220,0.12)";
      context.beginPath();
      this.drawing.forEach(([px, py], k) => k ? context.lineTo(px, py) : context.moveTo(px, py));
      context.closePath(); context.fill(); context.stroke(); context.setLineDash([]);
    }
    this.drawMarksLegend();
  }

  drawDensity(context) {
    const d = this.density, [z, xs, ys] = padded(rowsOf(d.z), arrayOf(d.x), arrayOf(d.y));
    const {start, end, size} = d.contours;
    const low = rgbOf(d.colorscale[0][1]), high = rgbOf(d.colorscale[d.colorscale.length - 1][1]);
    context.lineWidth = (d.line && d.line.width) || 1;
    for (let level = start; level <= end + size * 1e-6; level += size) {
      const share = end > start ? (level - start) / (end - start) : 1;
      context.strokeStyle = `rgb(${low.map((c, k) => Math.round(c + (high[k] - c) * share)).join(",")})`;
      context.beginPath();
      for (const [ax, ay, bx, by] of contourSegments(z, xs, ys, level)) {
        context.moveTo(...this.toPixels(ax, ay));
        context.lineTo(...this.toPixels(bx, by));
        this.densityLines += 1;
      }
      context.stroke();
    }
  }

  drawMark(context, mark) {
    const xs = arrayOf(mark.x), ys = arrayOf(mark.y), marker = mark.marker || {}, size = marker.size || 8;
    const line = marker.line || {};
    context.fillStyle = marker.color || "#111"; context.strokeStyle = line.color || "#fff"; context.lineWidth = line.width ?? 1;
    if ((mark.mode || "").includes("lines")) {
      context.save(); context.strokeStyle = (mark.line && mark.line.color) || "#000"; context.lineWidth = (mark.line && mark.line.width) || 2;
      context.beginPath();
      for (let k = 0; k < xs.length; k++) context[k ? "lineTo" : "moveTo"](...this.toPixels(xs[k], ys[k]));
      context.stroke(); context.restore();
    }
    const labels = (mark.mode || "").includes("text") ? mark.text || [] : [];
    for (let k = 0; k < xs.length; k++) {
      const [px, py] = this.toPixels(xs[k], ys[k]);
      symbolPath(context, marker.symbol || "circle", px, py, size / 2);
      context.fill(); if (context.lineWidth) context.stroke();
    }
    if (labels.length) {  // bold, with a halo in the background's colour: legible over dense points
      const font = mark.textfont || {};
      context.font = `bold ${font.size || 14}px sans-serif`; context.textAlign = "center"; context.textBaseline = "bottom";
      context.lineWidth = 3; context.strokeStyle = "#fff"; context.fillStyle = font.color || "#222";
      for (let k = 0; k < xs.length; k++) {
        const [px, py] = this.toPixels(xs[k], ys[k]);
        context.strokeText(String(labels[k]), px, py - size / 2 - 1);
        context.fillText(String(labels[k]), px, py - size / 2 - 1);
      }
    }
  }

  drawLegend() {
    const legend = this.root.querySelector(".pm-legend.base");
    const many = this.traces.length > 1;
    legend.replaceChildren(...(many ? this.traces : []).map((trace, t) => {
      const item = legendItem(trace.name, trace.css, "circle");
      item.classList.toggle("off", this.hidden.has(t));
      item.title = "Click: hide or show · double-click: show only this";
      item.addEventListener("click", () => {
        clearTimeout(this.legendClick);  // a double-click's first click waits for the second
        this.legendClick = setTimeout(() => this.setHidden(this.hidden.has(t) ? [...this.hidden].filter(k => k !== t) : [...this.hidden, t]), 250);
      });
      item.addEventListener("dblclick", () => {
        clearTimeout(this.legendClick);
        const only = this.hidden.size === this.traces.length - 1 && !this.hidden.has(t);
        this.setHidden(only ? [] : this.traces.map((_, k) => k).filter(k => k !== t));
      });
      return item;
    }));
  }

  drawMarksLegend() {
    const legend = this.root.querySelector(".pm-legend.marks");
    legend.replaceChildren(...this.marks.filter(m => m.showlegend !== false).map(m => legendItem(m.name, (m.marker || {}).color || "#111", (m.marker || {}).symbol || "circle")));
  }

  setHidden(indices) {
    this.hidden = new Set(indices);
    this.drawLegend();
    this.drawPoints();
    if (this.options.onHidden) this.options.onHidden([...this.hidden].map(t => this.traces[t].name));
  }

  // ---- interaction ----
  modeButtons() {
    const bar = this.root.querySelector(".pm-modes");
    const modes = [["select", "Box select"], ["lasso", "Lasso"], ["pan", "Pan"]];
    for (const [mode, title] of modes) {
      const button = Object.assign(document.createElement("button"), {type: "button", textContent: title});
      button.dataset.mode = mode;
      button.addEventListener("click", () => this.setMode(mode));
      bar.appendChild(button);
    }
    const reset = Object.assign(document.createElement("button"), {type: "button", textContent: "Reset view", title: "The whole map (or double-click it)"});
    reset.addEventListener("click", () => this.resetView());
    bar.appendChild(reset);
    this.setMode(this.mode);
  }

  setMode(mode) {
    this.mode = mode;
    for (const button of this.root.querySelectorAll(".pm-modes button[data-mode]")) button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
    this.plot.classList.toggle("pan", mode === "pan");
  }

  resetView() {
    if (!this.home) return;
    this.view = {x: this.home.x.slice(), y: this.home.y.slice()};
    this.viewChanged();
  }

  viewChanged() {
    this.drawPoints();
    this.drawMarks();
  }

  nearest(px, py) {  // the point drawn under CSS px (px, py), within HOVER_RADIUS: its index, or -1
    if (!this.pick || !this.view) return -1;
    const {w, ratio} = this.size(), W = Math.round(w * ratio), H = this.pick.length / W;
    const cx = Math.floor(px * ratio), cy = Math.floor(py * ratio), reach = Math.ceil(HOVER_RADIUS * ratio);
    let best = -1, bestDistance = Infinity;
    for (let qy = Math.max(0, cy - reach); qy <= Math.min(H - 1, cy + reach); qy++) {
      for (let qx = Math.max(0, cx - reach); qx <= Math.min(W - 1, cx + reach); qx++) {
        const i = this.pick[qy * W + qx];
        if (i < 0 || i === best) continue;
        const [ix, iy] = this.toPixels(this.x[i], this.y[i]);
        const distance = (ix - px) ** 2 + (iy - py) ** 2;
        if (distance < bestDistance && distance <= HOVER_RADIUS ** 2 * 2) { best = i; bestDistance = distance; }
      }
    }
    return best;
  }

  select(inside) {  // inside(px, py) → bool, over every visible point in the view
    const selected = new Uint8Array(this.count), ids = [];
    const {w, h} = this.size();
    for (let i = 0; i < this.count; i++) {
      if (this.hidden.has(this.traceOf[i])) continue;
      const [px, py] = this.toPixels(this.x[i], this.y[i]);
      if (px >= 0 && py >= 0 && px < w && py < h && inside(px, py)) { selected[i] = 1; ids.push(this.ids[i]); }
    }
    this.selected = ids.length ? selected : null;
    this.drawPoints();
    if (this.options.onSelect) this.options.onSelect(ids.length ? ids : null);
  }

  clearSelection() {
    if (!this.selected) return;
    this.selected = null;
    this.drawPoints();
    if (this.options.onSelect) this.options.onSelect(null);
  }

  listen() {
    const plot = this.plot, tip = this.tip();
    let down = null;  // the pointer's press: {x, y, view, path}
    const local = event => { const box = plot.getBoundingClientRect(); return [event.clientX - box.left, event.clientY - box.top]; };
    plot.addEventListener("pointerdown", event => {
      if (event.button !== 0 || event.target.closest(".pm-modes, .pm-layers")) return;
      plot.setPointerCapture(event.pointerId);
      const [px, py] = local(event);
      down = {px, py, path: [[px, py]], moved: false};
      tip.hide();
    });
    plot.addEventListener("pointermove", event => {
      const [px, py] = local(event);
      if (!down) { this.hoverAt(px, py, event); return; }
      if (Math.abs(px - down.px) + Math.abs(py - down.py) > 3) down.moved = true;
      if (!down.moved) return;
      if (this.mode === "pan") {
        const shift = `translate(${px - down.px}px, ${py - down.py}px)`;
        this.pointsCanvas.style.transform = shift; this.marksCanvas.style.transform = shift;
      } else {
        down.path.push([px, py]);
        this.drawing = this.mode === "lasso" ? down.path
          : [[down.px, down.py], [px, down.py], [px, py], [down.px, py]];
        this.drawMarks();
      }
    });
    plot.addEventListener("pointerup", event => {
      if (!down) return;
      const [px, py] = local(event), press = down;
      down = null;
      this.drawing = null;
      if (!press.moved) {
        const i = this.nearest(px, py);
        if (i >= 0 && this.options.onClick) this.options.onClick(this.ids[i]);
        else if (i < 0) this.clearSelection();
        this.drawMarks();
        return;
      }
      if (this.mode === "pan") {
        const [ax, ay] = this.fromPixels(press.px, press.py), [bx, by] = this.fromPixels(px, py);
        this.view = {x: this.view.x.map(v => v - (bx - ax)), y: this.view.y.map(v => v - (by - ay))};
        this.viewChanged();
      } else if (this.mode === "lasso") {
        const mask = document.createElement("canvas"), {w, h} = this.size();
        mask.width = Math.ceil(w); mask.height = Math.ceil(h);
        const context = mask.getContext("2d", {willReadFrequently: true});
        context.beginPath();
        press.path.forEach(([x, y], k) => k ? context.lineTo(x, y) : context.moveTo(x, y));
        context.closePath(); context.fill();
        const alpha = context.getImageData(0, 0, mask.width, mask.height).data;
        this.select((x, y) => alpha[(Math.floor(y) * mask.width + Math.floor(x)) * 4 + 3] > 127);
        this.drawMarks();
      } else {
        const [left, right] = [Math.min(press.px, px), Math.max(press.px, px)], [top, bottom] = [Math.min(press.py, py), Math.max(press.py, py)];
        this.select((x, y) => x >= left && x <= right && y >= top && y <= bottom);
        this.drawMarks();
      }
    });
    plot.addEventListener("dblclick", () => { this.clearSelection(); this.resetView(); });
    plot.addEventListener("pointerleave", () => { if (!down) tip.hide(); });
    // The wheel scrolls the page past the map unless the map is in use (pressed since the pointer came
    // in, or full screen) or Ctrl / ⌘ is held: then it zooms.
    let engaged = false;
    plot.addEventListener("pointerdown", () => { engaged = true; });
    plot.addEventListener("pointerleave", () => { engaged = false; });
    let zoom = null;  // wheel steps gathered until the next frame: one redraw for a burst of them
    plot.addEventListener("wheel", event => {
      if (!(engaged || event.ctrlKey || event.metaKey || document.fullscreenElement)) {
        if (this.options.onWheelPassed) this.options.onWheelPassed();
        return;  // the page scrolls
      }
      event.preventDefault();
      const [px, py] = local(event);
      const factor = Math.exp(Math.max(-1, Math.min(1, event.deltaY * (event.deltaMode ? 0.05 : 0.002))));
      if (!zoom) {
        zoom = {factor: 1, px, py};
        requestAnimationFrame(() => {
          const [cx, cy] = this.fromPixels(zoom.px, zoom.py), f = zoom.factor;
          this.view = {x: this.view.x.map(v => cx + (v - cx) * f), y: this.view.y.map(v => cy + (v - cy) * f)};
          zoom = null;
          this.viewChanged();
        });
      }
      zoom.factor *= factor; zoom.px = px; zoom.py = py;
    }, {passive: false});
  }

  hoverAt(px, py, event) {
    if (this.hoverFrame) { this.hoverNext = [px, py, event]; return; }
    this.hoverFrame = requestAnimationFrame(() => {
      this.hoverFrame = null;
      const i = this.nearest(px, py), tip = this.tip();
      if (i < 0) tip.hide(); else tip.show(i, px, py);
      if (this.hoverNext) { const next = this.hoverNext; this.hoverNext = null; this.hoverAt(...next); }
    });
  }

  tip() {  // the hover label: the point's text (fetched through options.text) and its colour's name
    if (this._tip) return this._tip;
    const element = document.createElement("div");
    element.className = "pm-tip";
    Object.assign(element.style, {position: "absolute", zIndex: 7, maxWidth: "420px", padding: "6px 9px", borderRadius: "4px",
      background: "rgba(255,255,255,0.96)", border: "1px solid #bbb", boxShadow: "0 1px 4px rgba(0,0,0,0.2)", fontSize: "13px",
      lineHeight: 1.35, color: "#222", whiteSpace: "pre-wrap", overflowWrap: "anywhere", pointerEvents: "none", display: "none"});
    const text = document.createElement("span"), name = document.createElement("span");
    text.className = "text";
    name.className = "name";
    Object.assign(name.style, {display: "block", marginTop: "4px", fontSize: "11px", color: "#666"});
    element.append(text, name);
    this.plot.appendChild(element);
    const map = this;
    this._tip = {
      element,
      show(i, px, py) {
        const id = map.ids[i];
        if (element.dataset.id === String(id) && element.style.display === "block") return;
        element.dataset.id = id;
        element.querySelector(".name").textContent = map.traces.length > 1 ? map.traces[map.traceOf[i]].name : "";
        element.querySelector(".text").textContent = "…";
        element.style.left = Math.max(0, Math.min(px + 14, map.size().w - 430)) + "px";
        element.style.top = (py + 14 > map.height - 80 ? Math.max(0, py - 90) : py + 14) + "px";
        element.style.display = "block";
        Promise.resolve(map.options.text ? map.options.text(id) : "").then(text => {
          if (element.dataset.id === String(id)) element.querySelector(".text").textContent = text ?? "";
        });
      },
      hide() { element.style.display = "none"; element.dataset.id = ""; },
    };
    return this._tip;
  }

  // For tests and benchmarks: where point `share` of the way through the points is, in the page.
  pointOnPage(share) {
    const i = Math.floor(share * (this.count - 1)), [px, py] = this.toPixels(this.x[i], this.y[i]), box = this.plot.getBoundingClientRect();
    return [box.left + px, box.top + py];
  }

  setView(x, y) { this.view = {x, y}; this.viewChanged(); }
}

function symbolPath(context, symbol, x, y, r) {
  context.beginPath();
  if (symbol === "diamond") {
    context.moveTo(x, y - r); context.lineTo(x + r, y); context.lineTo(x, y + r); context.lineTo(x - r, y); context.closePath();
  } else if (symbol === "star") {
    for (let k = 0; k < 10; k++) {
      const angle = -Math.PI / 2 + k * Math.PI / 5, radius = k % 2 ? r * 0.45 : r;
      context[k ? "lineTo" : "moveTo"](x + radius * Math.cos(angle), y + radius * Math.sin(angle));
    }
    context.closePath();
  } else {
    context.arc(x, y, r, 0, 2 * Math.PI);
  }
}

function legendItem(name, colour, symbol) {
  const item = document.createElement("span");
  item.className = "item";
  const swatch = document.createElement("canvas");
  swatch.width = 12; swatch.height = 12;
  const context = swatch.getContext("2d");
  context.fillStyle = colour; context.strokeStyle = "#fff"; context.lineWidth = 1;
  symbolPath(context, symbol, 6, 6, 5.5); context.fill();
  const label = document.createElement("span");
  label.textContent = name;
  item.append(swatch, label);
  return item;
}
