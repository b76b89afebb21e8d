// The latentviz static site's viewer. It reads data/*.json beside it and puts every text on the page
// with textContent (never innerHTML): dataset text is untrusted. The view lives in the URL's hash
// (#tab=map&map=1&q=vote), so a link reproduces it.
"use strict";

const CONFIG = {displaylogo: false, responsive: true};  // small charts: the wheel scrolls the page
const state = Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
const cache = {};
const TABS = ["map", "features", "codebooks", "vaes"];

const $ = id => document.getElementById(id);
function save() { location.hash = new URLSearchParams(state).toString(); }
async function load(path) {
  if (!(path in cache)) {
    const response = await fetch(path);
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    cache[path] = await response.json();
  }
  return cache[path];
}
function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}
function options(select, items, chosen) {
  select.replaceChildren(...items.map(item => element("option", item.title, {value: item.id})));
  if (chosen !== undefined && items.some(item => String(item.id) === String(chosen))) select.value = chosen;
}
function empty(target, message) { target.replaceChildren(element("div", message, {class: "empty"})); }

// -- tabs ---------------------------------------------------------------------------------------------
function show(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll("header button")) button.classList.toggle("on", button.dataset.tab === tab);
  for (const name of TABS) $(`tab-${name}`).hidden = name !== tab;
  save();
  ({map: drawMap, features: drawFeatures, codebooks: drawCodebook, vaes: drawVae})[tab]();
}

// -- the map ------------------------------------------------------------------------------------------
// point_map.js draws it, as in the app: the colourings' traces and the points' order for each come
// from the export (charts.map_colouring), so colours match the app's.
let pointMap = null, drawnMap = null;
async function drawMap() {
  if (!index.maps.length) return empty($("tab-map"), "This site holds no map.");
  const points = await load(`data/map-${$("map-pick").value}.json`);
  state.map = $("map-pick").value; state.colour = $("map-colour").value; state.q = $("map-search").value; save();
  const query = state.q.trim().toLowerCase();
  const matched = query ? points.text.map((t, i) => t.toLowerCase().includes(query) ? i : -1).filter(i => i >= 0) : null;
  if (!pointMap) window.pointMap = pointMap = new PointMap($("map-plot"), {height: 640, mode: "pan"});  // window: for the tests
  pointMap.options.text = i => {  // the ids here are the points' rows in this map's file, cut as in the app
    const text = points.text[i];
    return text.length <= points.hover_chars ? text : text.slice(0, points.hover_chars - 1) + "…";
  };
  const colouring = points.colourings[state.colour === "label" ? "label" : "none"];
  const order = colouring.order;
  if (drawnMap !== `${state.map}:${state.colour}`) {
    drawnMap = `${state.map}:${state.colour}`;
    pointMap.setNames(points.names);
    pointMap.setDensity(points.density);
    pointMap.setPoints({traces: colouring.traces, x: order.map(i => points.x[i]), y: order.map(i => points.y[i]), ids: order});
  }
  pointMap.setMarks(matched ? [{name: "search matches", x: matched.map(i => points.x[i]), y: matched.map(i => points.y[i]),
    customdata: matched, marker: {size: 8, color: "#111111", line: {width: 1, color: "#FFFFFF"}}}] : [], matched ? 0.8 : 0);
  $("map-count").textContent = matched
    ? `${matched.length === 1 ? "1 text contains" : `${matched.length.toLocaleString()} texts contain`} “${state.q}”`
    : `${points.x.length.toLocaleString()} texts`;
  const list = $("map-matches");
  list.replaceChildren();
  if (matched && matched.length) {
    const table = element("table");
    for (const i of matched.slice(0, 200)) {
      const row = element("tr");
      row.append(element("td", points.label[i] ?? ""), element("td", points.text[i]));
      table.append(row);
    }
    list.append(element("p", matched.length > 200 ? "The first 200 matches:" : "Matches:", {class: "muted"}), table);
  }
}

// -- SAE features -------------------------------------------------------------------------------------
async function drawFeatures() {
  if (!index.saes.length) return empty($("tab-features"), "This site holds no SAE.");
  const sae = $("sae-pick").value;
  const list = await load(`data/sae-${sae}.json`);
  const column = Object.fromEntries(list.columns.map((name, i) => [name, i]));
  state.sae = sae; state.fq = $("sae-search").value; save();
  const wanted = state.fq.trim().toLowerCase();
  const rows = list.rows.filter(r => r[column.fires] > 0 && (!wanted || String(r[column.label]).toLowerCase().includes(wanted)))
    .sort((a, b) => b[column.density] - a[column.density]);
  $("sae-count").textContent = `${rows.length.toLocaleString()} of ${list.rows.length.toLocaleString()} features; click one to open it`;
  const table = $("feature-list");
  const head = element("tr");
  for (const name of ["feature", "label", "density", "max"]) head.append(element("th", name));
  table.replaceChildren(head);
  for (const r of rows) {
    const row = element("tr", null, {class: "pick"});
    row.append(element("td", r[column.feature]), element("td", r[column.label]),
      element("td", Number(r[column.density]).toExponential(2)), element("td", Number(r[column.max]).toFixed(2)));
    row.addEventListener("click", () => openFeature(r[column.feature]));
    table.append(row);
  }
  const known = state.feature !== undefined && list.rows.some(r => String(r[column.feature]) === String(state.feature));
  openFeature(known ? state.feature : list.opening);  // the app's opening feature: a clearly labelled one
}

async function openFeature(feature) {
  const sae = $("sae-pick").value;
  const list = await load(`data/sae-${sae}.json`);
  const column = Object.fromEntries(list.columns.map((name, i) => [name, i]));
  const row = list.rows.find(r => String(r[column.feature]) === String(feature));
  state.feature = String(feature); save();
  const target = $("feature");
  target.replaceChildren(element("h2", `Feature ${feature}: ${row[column.label] || "(never fired)"}`));
  if (!row[column.fires]) return target.append(element("p", "This feature never fired on the captured tokens."));
  const data = await load(`data/sae-${sae}/${feature}.json`);
  const max = row[column.max] || 1;
  const columns = element("div", null, {class: "cols"});
  const left = element("div"), right = element("div");
  left.append(element("h3", "Top activations, one per text"));
  for (const example of data.examples.filter(e => e.bucket < 0)) left.append(shaded(example, max));
  const intervals = data.examples.filter(e => e.bucket >= 0).sort((a, b) => b.bucket - a.bucket);
  if (intervals.length) {
    left.append(element("h3", "Across the range"));
    for (const example of intervals) left.append(shaded(example, max));
  }
  const histogram = element("div", null, {style: "height: 220px"});
  right.append(element("h3", "Activations"), histogram);
  for (const [kind, title, score] of [["promotes", "Promotes", "logit"], ["suppresses", "Suppresses", "logit"],
                                        ["neighbours", "Nearest (decoder cosine)", "cosine"], ["cooccurs", "Fire together", "tokens"]]) {
    right.append(element("h3", title));
    const table = element("table");
    for (const item of data.links[kind]) {
      const line = element("tr");
      if (kind === "neighbours" || kind === "cooccurs") {
        const link = element("a", `#${item[0]}`, {class: "feature"});
        link.addEventListener("click", () => openFeature(item[0]));
        const cell = element("td"); cell.append(link);
        line.append(cell, element("td", item[2]), element("td", score === "tokens" ? item[1] : Number(item[1]).toFixed(3)));
      } else {
        line.append(element("td", item[0]), element("td", Number(item[1]).toFixed(3)));
      }
      table.append(line);
    }
    right.append(table);
  }
  columns.append(left, right);
  target.append(element("p", `fires on ${Number(row[column.fires]).toLocaleString()} tokens · density `
    + `${Number(row[column.density]).toExponential(2)} · max ${Number(row[column.max]).toFixed(3)}`, {class: "muted"}), columns);
  Plotly.newPlot(histogram, [{type: "bar", x: data.histogram.start, y: data.histogram.count, marker: {color: "#4C78A8"}}],
    {margin: {l: 40, r: 10, t: 10, b: 30}, bargap: 0.05, yaxis: {type: "log"}}, CONFIG);
}

function shaded(example, max) {
  const line = element("div", null, {class: "example"});
  line.append(element("b", example.value.toFixed(2) + " "));
  for (const [token, value] of example.tokens) {
    const span = element("span", token, {class: "tok", title: value.toFixed(3)});
    if (value > 0) span.style.background = `rgba(216, 27, 96, ${Math.min(1, value / max) * 0.8 + 0.1})`;
    line.append(span);
  }
  return line;
}

// -- codebooks ----------------------------------------------------------------------------------------
async function drawCodebook() {
  if (!index.codebooks.length) return empty($("tab-codebooks"), "This site holds no VQ model.");
  const book = await load(`data/vq-${$("vq-pick").value}.json`);
  state.vq = $("vq-pick").value; save();
  const dead = book.counts.filter(c => c === 0).length;
  $("vq-gini").textContent = `${book.size.toLocaleString()} codes · ${dead.toLocaleString()} never used · Gini ${book.gini.toFixed(3)}`;
  Plotly.react($("vq-usage"), [{
    type: "bar", x: book.counts.map((_, i) => i + 1), y: book.counts, text: book.codes.map(c => `code ${c}`),
    marker: {color: book.counts.map(c => c === 0 ? "#D62728" : "#4C78A8")}, hovertemplate: "%{text}: %{y:,}<extra></extra>",
  }], {margin: {l: 50, r: 10, t: 30, b: 40}, title: {text: "Uses per code, most used first"},
       xaxis: {title: {text: "rank"}}, yaxis: {title: {text: "texts"}}}, CONFIG);
  Plotly.react($("vq-lorenz"), [
    {type: "scatter", mode: "lines", x: book.lorenz.codes, y: book.lorenz.uses, name: "this codebook"},
    {type: "scatter", mode: "lines", x: [0, 1], y: [0, 1], name: "every code used equally", line: {dash: "dot", color: "#999"}},
  ], {margin: {l: 50, r: 10, t: 30, b: 40}, title: {text: "Lorenz curve of code use"},
      xaxis: {title: {text: "share of codes, least used first"}}, yaxis: {title: {text: "share of uses"}},
      legend: {x: 0, y: 1}}, CONFIG);
}

// -- text VAEs: what was decoded at export time ----------------------------------------------------
async function drawVae() {
  if (!index.vaes.length) return empty($("tab-vaes"), "This site holds no text VAE.");
  const vae = await load(`data/vae-${$("vae-pick").value}.json`);
  state.vae = $("vae-pick").value; save();
  $("vae-samples").replaceChildren(...vae.samples.map(text => element("li", text)));
  const ends = vae.interpolation;
  $("vae-path-ends").textContent = `from “${ends.from}” to “${ends.to}”; words changed per step: ${ends.smoothness.toFixed(1)}`;
  $("vae-path").replaceChildren(...ends.rows.map(([t, text]) => {
    const row = element("tr"); row.append(element("td", `t = ${t.toFixed(2)}`), element("td", text)); return row;
  }));
  $("vae-traversal-text").textContent = `“${vae.traversal.text}”, moved from −3σ to +3σ along each direction`;
  $("vae-traversal").replaceChildren(...vae.traversal.rows.map(([direction, offset, text]) => {
    const row = element("tr");
    row.append(element("td", direction), element("td", `${offset > 0 ? "+" : ""}${offset.toFixed(1)}σ`), element("td", text));
    return row;
  }));
}

// -- start --------------------------------------------------------------------------------------------
let index;
(async () => {
  index = await load("data/index.json");
  options($("map-pick"), index.maps, state.map);
  options($("sae-pick"), index.saes, state.sae);
  options($("vq-pick"), index.codebooks, state.vq);
  options($("vae-pick"), index.vaes, state.vae);
  if (state.colour) $("map-colour").value = state.colour;
  $("map-search").value = state.q || "";
  $("sae-search").value = state.fq || "";
  for (const button of document.querySelectorAll("header button")) button.addEventListener("click", () => show(button.dataset.tab));
  for (const [id, draw] of [["map-pick", drawMap], ["map-colour", drawMap], ["sae-pick", drawFeatures], ["vq-pick", drawCodebook], ["vae-pick", drawVae]])
    $(id).addEventListener("change", () => { if (id === "sae-pick") delete state.feature; draw(); });
  let typing;
  $("map-search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(drawMap, 250); });
  $("sae-search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(drawFeatures, 250); });
  show(TABS.includes(state.tab) ? state.tab : "map");
})();
