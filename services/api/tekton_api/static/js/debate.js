// a stage's debate: rounds × seats (vote and confidence), each round's accept share
// against the threshold, the mediator's verdict and its dissent
import {SEATS, svg, svgText} from "./dom.js";

let debates = new Map();
let configThreshold = 0.67, runThreshold = null;  // a run's own threshold, when it names one, wins
const thresholdNow = () => runThreshold ?? configThreshold;

export function setConfigThreshold(value) { configThreshold = value; }

export function resetDebates() {
  debates = new Map();
  runThreshold = null;
}

function debateOf(stage) {
  if (!debates.has(stage)) debates.set(stage, {rounds: new Map(), outcome: null});
  return debates.get(stage);
}

function roundOf(d, round) {
  if (!d.rounds.has(round)) d.rounds.set(round, {seats: new Map(), share: null});
  return d.rounds.get(round);
}

const confidence = (c) => (c !== null ? c.toFixed(2) : "");

function drawDebate(stage, box) {
  const d = debateOf(stage);
  let pic = box.querySelector("svg.debate");
  if (!pic) {
    pic = svg("svg", {class: "debate", role: "img", "aria-label": `the ${stage} debate: rounds by seats`});
    box.querySelector(".state").after(pic);
  }
  const seats = [...SEATS];
  for (const r of d.rounds.values()) for (const role of r.seats.keys()) if (!seats.includes(role)) seats.push(role);
  const LABEL = 60, CELL = 120, ROW = 20, SHARE = 130, threshold = thresholdNow();
  const left = LABEL + seats.length * CELL + 8;
  const nodes = seats.map((role, i) => svgText(role, {x: LABEL + i * CELL + 4, y: 12, class: "muted"}));
  nodes.push(svgText("accept share", {x: left, y: 12, class: "muted"}));
  const rounds = [...d.rounds.entries()].sort((a, b) => a[0] - b[0]);
  rounds.forEach(([round, r], i) => {
    const y = 18 + i * ROW;
    nodes.push(svgText(`round ${round}`, {x: 0, y: y + 14}));
    seats.forEach((role, j) => {
      const seat = r.seats.get(role);
      if (!seat) return;
      nodes.push(svg("rect", {class: `cell ${seat.vote}`, "data-role": role, "data-round": round, x: LABEL + j * CELL, y, width: CELL - 4, height: ROW - 3, rx: 2},
        `round ${round} ${role} ${seat.ci}: ${seat.vote}${seat.confidence !== null ? `, confidence ${confidence(seat.confidence)}` : ""}${seat.dissent ? `; dissent: ${seat.dissent}` : ""}`));
      nodes.push(svgText(`${seat.vote} ${confidence(seat.confidence)}`, {x: LABEL + j * CELL + 4, y: y + 13}));
    });
    if (r.share !== null) {
      nodes.push(svg("rect", {class: `share${r.share >= threshold ? " met" : ""}`, x: left, y: y + 3, width: Math.max(1, r.share * SHARE), height: ROW - 9},
        `round ${round}: accept share ${r.share.toFixed(2)} (threshold ${threshold.toFixed(2)})`));
      nodes.push(svgText(r.share.toFixed(2), {x: left + SHARE + 6, y: y + 13, class: "share-value"}));
    }
  });
  const bottom = 18 + rounds.length * ROW;
  const line = left + threshold * SHARE;
  nodes.push(svg("line", {class: "threshold", x1: line, x2: line, y1: 16, y2: bottom}, `threshold ${threshold.toFixed(2)}`));
  let height = bottom + 4;
  if (d.outcome) {
    const o = d.outcome;
    nodes.push(svg("rect", {class: `cell verdict ${o.status}`, x: 0, y: height, width: left - 12, height: ROW - 3, rx: 2},
      o.rationale || o.status));
    nodes.push(svgText(`mediator ${o.ci}: ${o.status}${o.confidence !== null ? ` (confidence ${confidence(o.confidence)})` : ""}`, {x: 4, y: height + 13}));
    height += ROW;
    for (const dissent of o.dissent.slice(0, 3)) {
      nodes.push(svgText(`dissent: ${String(dissent).slice(0, 110)}`, {x: 4, y: height + 13, class: "muted dissent"}));
      height += 16;
    }
  }
  pic.setAttribute("viewBox", `0 0 ${left + SHARE + 42} ${height + 2}`);
  pic.replaceChildren(...nodes);
}

// an event of the run, for the debates it tells of (`boxOf`: a stage's box on the page)
export function debateEvent(event, kind, boxOf) {
  if (kind === "RunStarted" && typeof event.request.threshold === "number") runThreshold = event.request.threshold;
  if (kind === "StageProgress" && event.accept_share !== undefined && /^round \d+$/.test(event.step)) {
    roundOf(debateOf(event.stage), Number(event.step.split(" ")[1])).share = event.accept_share;
    drawDebate(event.stage, boxOf(event.stage));
  }
  if (kind !== "DebateTurn") return;
  const t = event.turn, d = debateOf(event.stage);
  if (t.role === "mediator") {
    const o = t.outcome || {};
    d.outcome = {ci: t.ci, status: o.status || (t.abstained ? "abstain" : "none"), rationale: o.rationale || "",
      confidence: typeof o.confidence === "number" ? o.confidence : null, dissent: Array.isArray(o.dissent) ? o.dissent : []};
  } else {
    const p = t.position;
    roundOf(d, t.round).seats.set(t.role, {ci: t.ci, vote: p ? p.vote : (t.abstained ? "abstain" : "none"),
      confidence: p ? p.self_confidence : null, dissent: p && p.dissent});
  }
  drawDebate(event.stage, boxOf(event.stage));
}
