// what every part of the page builds with: elements, SVG, bars, and addresses
export const STAGES = ["plan", "research", "plan_update", "code", "review", "threat", "integrate", "test_debug", "release"];
export const SEATS = ["proponent", "skeptic", "pragmatist"];
export const ROLES = [...SEATS, "mediator"];

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, title = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (title) node.append(Object.assign(document.createElementNS(SVG, "title"), {textContent: title}));
  return node;
}

export const svgText = (text, attrs) => Object.assign(svg("text", attrs), {textContent: text});

// horizontal bars, one row each: its name, its parts side by side ([class, value]), what
// it says at the end; scaled to the largest row
export function barRows(target, {width, label, right, row}, rows) {
  const total = (r) => r.parts.reduce((n, [, v]) => n + v, 0);
  const most = Math.max(1e-9, ...rows.map(total)), scale = (n) => (n / most) * (width - label - right);
  const nodes = [];
  rows.forEach((r, i) => {
    const y = i * row;
    nodes.push(svgText(r.name, {x: 0, y: y + row - 4}));
    let x = label;
    r.parts.forEach(([cls, value], k) => {
      if (k > 0 && !value) return;
      nodes.push(svg("rect", {class: cls, ...(k === 0 ? r.data : {}), x, y: y + 3, width: Math.max(k === 0 ? 1 : 0, scale(value)), height: row - 6}, r.title));
      x += scale(value);
    });
    nodes.push(svgText(r.said, {x: width - right + 5, y: y + row - 4}));
  });
  target.setAttribute("viewBox", `0 0 ${width} ${rows.length * row}`);
  target.style.display = rows.length ? "" : "none";  // an empty picture takes no room
  target.replaceChildren(...nodes);
}

// addresses: /ui/runs/<id>, /ui/runs/<id>/stages/<stage>, /ui/runs/<id>/artifacts/<name>;
// going to one tells the page (main.js routes) without reloading it
export function go(path) {
  if (location.pathname !== path) history.pushState(null, "", path);
  window.dispatchEvent(new Event("tekton:route"));
}

export function link(path, text) {
  return el("a", {href: path, textContent: text, onclick: (e) => { e.preventDefault(); go(path); }});
}

export const money = (usd) => `$${(usd || 0).toFixed(4)}`;
