// A map's area names for the view's zoom level (projection.map_labels gives them, coarse and large
// first), as Plotly annotations; shared by the Latent Map's component and the static site.
// Level l (four times the areas of level l - 1, each half as wide) shows from 2^(l - 1/2) times the
// whole map's zoom (`home`: its x and y ranges as first drawn); a name that would overlap one already
// placed, or leave the view, is left out, so a crowded view keeps the broad names.
"use strict";

const AREA_NAME_SIZES = [15, 13, 11];  // px, by level

function areaNames(names, home, layout) {
  if (!names || !home) return [];
  const [x0, x1] = layout.xaxis.range, [y0, y1] = layout.yaxis.range, w = layout._size.w, h = layout._size.h;
  const zoom = Math.min((home.x[1] - home.x[0]) / (x1 - x0), (home.y[1] - home.y[0]) / (y1 - y0));
  const deepest = Math.floor(Math.log2(Math.max(zoom, 1)) + 0.5);
  const boxes = [], placed = [];
  for (const name of names) {
    if (name.level > deepest) continue;
    const size = AREA_NAME_SIZES[Math.min(name.level, AREA_NAME_SIZES.length - 1)];
    const px = (name.x - x0) / (x1 - x0) * w, py = (y1 - name.y) / (y1 - y0) * h;
    const half = {x: name.text.length * size * 0.3 + 4, y: size * 0.7 + 2};  // about half a name's box
    const box = [px - half.x, py - half.y, px + half.x, py + half.y];
    if (box[0] < 0 || box[1] < 0 || box[2] > w || box[3] > h) continue;
    if (boxes.some(b => box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3])) continue;
    boxes.push(box);
    placed.push({
      x: name.x, y: name.y, showarrow: false, bgcolor: "rgba(255,255,255,0.65)", borderpad: 1,
      // Plotly reads a subset of HTML in annotations: the words are escaped
      text: name.text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"),
      font: {size: size, color: "#1a1a1a", weight: name.level === 0 ? "bold" : "normal"},
    });
  }
  return placed;
}
