// the work a run did: its change file by file, the checks before and after, and its
// artifacts rendered for reading with the raw JSON a click away
import {api} from "./api.js";
import {$, el} from "./dom.js";

export function checkLine(where, r) {
  const ok = r.exit_code === 0 && !r.timed_out;
  const counts = ["passed", "failed", "skipped"].filter((k) => r[k] !== undefined).map((k) => `${r[k]} ${k}`).join(", ");
  const said = ok ? "ok" : (r.timed_out ? "timed out" : `exit ${r.exit_code}`);
  return el("details", {className: "turn check"},
    el("summary", {}, `${where} ${r.name} `, el("code", {textContent: r.command}), " ",
      el("span", {className: ok ? "vote-accept" : "vote-reject", textContent: said}),
      `${counts ? ` (${counts})` : ""} in ${r.duration_s.toFixed(2)}s`),
    el("pre", {textContent: r.output_tail || "(no output)"}));
}

// a file's patch with its lines coloured, and long runs of unchanged context folded
function patchView(patch) {
  const pre = el("pre", {className: "patch"});
  const line = (text, kind) => el("span", {className: `line ${kind}`, textContent: `${text}\n`});
  let context = [];
  const flush = () => {
    if (context.length > 6) {
      pre.append(...context.slice(0, 2).map((l) => line(l, "ctx")));
      pre.append(el("details", {className: "fold"}, el("summary", {textContent: `${context.length - 4} unchanged lines`}),
        ...context.slice(2, -2).map((l) => line(l, "ctx"))));
      pre.append(...context.slice(-2).map((l) => line(l, "ctx")));
    } else pre.append(...context.map((l) => line(l, "ctx")));
    context = [];
  };
  for (const text of patch.split("\n")) {
    const kind = text.startsWith("@@") ? "hunk" : text.startsWith("+++") || text.startsWith("---") ? "head"
      : text.startsWith("+") ? "add" : text.startsWith("-") ? "del" : "ctx";
    if (kind === "ctx") { context.push(text); continue; }
    flush();
    pre.append(line(text, kind));
  }
  flush();
  return pre;
}

// a repository run at a glance: where it came from, what changed, the checks before and after
function health(state) {
  const added = state.files.reduce((n, f) => n + f.added, 0), removed = state.files.reduce((n, f) => n + f.removed, 0);
  const rows = [["result branch", state.branch || "—"],
    ["change", `${state.files.length} file${state.files.length === 1 ? "" : "s"}, +${added} −${removed}`]];
  const base = new Map((state.base_checks || []).map((c) => [c.name, c]));
  const mark = (c) => !c ? "—" : (c.exit_code === 0 && !c.timed_out ? "✓ passed" : (c.timed_out ? "✗ timed out" : `✗ exit ${c.exit_code}`));
  for (const c of state.checks || []) rows.push([`check ${c.name}`, `before ${mark(base.get(c.name))} · after ${mark(c)}`]);
  return el("section", {className: "health"}, el("h3", {textContent: "Repository"}),
    el("table", {className: "health"}, el("tbody", {}, ...rows.map(([k, v]) => el("tr", {}, el("td", {textContent: k}), el("td", {textContent: v}))))));
}

export async function showChange(runId) {
  const state = await api(`/runs/${encodeURIComponent(runId)}`);
  const box = $("change");
  box.replaceChildren();
  if (!state.files || !state.files.length) return;
  box.append(health(state));
  box.append(el("h3", {textContent: `Change${state.branch ? ` (branch ${state.branch})` : ""}`}));
  for (const f of state.files) {
    box.append(el("details", {className: "file"},
      el("summary", {}, el("code", {textContent: f.path}), ` +${f.added} -${f.removed}`),
      patchView(f.patch)));
  }
}

let asked = 0;  // the artifact asked last: an earlier answer that comes later is let go

export function clearArtifact() {
  asked += 1;
  $("artifact-title").textContent = "Artifact";
  $("artifact").textContent = "";
  $("artifact-view").className = "muted";
  $("artifact-view").replaceChildren("Choose an artifact of a run.");
}

export async function openArtifact(runId, name) {
  const mine = ++asked;
  $("artifact-title").textContent = `${name} (${runId})`;
  const body = await api(`/runs/${encodeURIComponent(runId)}/artifacts/${encodeURIComponent(name)}`);
  if (mine !== asked) return;
  $("artifact").textContent = typeof body === "string" ? body : JSON.stringify(body, null, 2);
  $("artifact-view").className = "";
  $("artifact-view").replaceChildren(typeof body === "string" ? patchView(body) : readable(body));
}

// an artifact for reading: fields as headings, lists as lists, objects nested
function readable(value, depth = 0) {
  if (Array.isArray(value)) {
    if (!value.length) return el("span", {className: "muted", textContent: "none"});
    return el("ul", {}, ...value.map((item) => el("li", {}, readable(item, depth + 1))));
  }
  if (value && typeof value === "object") {
    const list = el("dl", {className: `fields depth-${Math.min(depth, 3)}`});
    for (const [key, inner] of Object.entries(value)) {
      list.append(el("dt", {textContent: key.replaceAll("_", " ")}), el("dd", {}, readable(inner, depth + 1)));
    }
    return list;
  }
  if (typeof value === "number") return el("span", {textContent: Number.isInteger(value) ? String(value) : value.toFixed(2)});
  return el("span", {textContent: value === null ? "—" : String(value)});
}
