"""`tekton trace RUN_ID`: a run's whole cross-process trace, from the local span files.

Every process writes its spans to ``$TEKTON_HOME/traces/<service>.jsonl`` when no
OTLP exporter is configured. The spans naming the run (``tekton.run_id``) give the
trace ids; every span of those traces, whichever process wrote it, goes in the tree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tekton_common.errors import NotFoundError
from tekton_common.spans import RUN_ID
from tekton_common.telemetry import traces_dir

TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")


def read_spans(folder: Path) -> list[dict[str, Any]]:
    """Every span in the folder's files (unreadable lines are skipped)."""
    found: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    span = json.loads(line)
                except ValueError:
                    continue
                if isinstance(span, dict) and "span_id" in span:
                    found.append(span)
    return found


def run_spans(spans: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """The spans of every trace that has a span of the run."""
    traces = {s["trace_id"] for s in spans if s.get("attributes", {}).get(RUN_ID) == run_id}
    return [s for s in spans if s["trace_id"] in traces]


def build_tree(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spans nested under their parents (`children`), each with its subtree's tokens and
    cost (`tokens`, `cost_usd`), roots and children in start order."""
    by_id = {s["span_id"]: {**s, "children": []} for s in spans}
    roots: list[dict[str, Any]] = []
    for node in sorted(by_id.values(), key=lambda s: s["start_ns"]):
        parent = by_id.get(node.get("parent_id") or "")
        (parent["children"] if parent else roots).append(node)

    def total(node: dict[str, Any]) -> None:
        attributes = node.get("attributes", {})
        node["tokens"] = sum(int(attributes.get(k, 0)) for k in TOKENS)
        node["cost_usd"] = float(attributes.get("tekton.cost_usd", 0.0))
        if node["name"].startswith("chat "):
            return
        for child in node["children"]:
            total(child)
            node["tokens"] += child["tokens"]
        if not node["name"].startswith("invoke_workflow"):  # workflows carry their own total
            node["cost_usd"] = sum(c["cost_usd"] for c in node["children"])

    for root in roots:
        total(root)
    return roots


def _line(node: dict[str, Any]) -> str:
    seconds = (node["end_ns"] - node["start_ns"]) / 1e9
    attributes = node.get("attributes", {})
    name = node["name"]
    if "tekton.stage" in attributes and name.startswith("invoke_workflow"):
        name += f" ({attributes['tekton.stage']})"
    parts = [name, f"[{node['service']}]", f"{seconds:.3f}s"]
    if node["tokens"]:
        parts.append(f"{node['tokens']} tokens")
    if node["cost_usd"]:
        parts.append(f"${node['cost_usd']:.4f}")
    if "tekton.status" in attributes:
        parts.append(str(attributes["tekton.status"]))
    if node.get("status") == "ERROR":
        parts.append(f"ERROR {node.get('error') or ''}".rstrip())
    return "  ".join(parts)


def render(roots: list[dict[str, Any]]) -> str:
    """The tree, one span per line, with box-drawing branches."""
    lines: list[str] = []

    def walk(node: dict[str, Any], prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + _line(node))
        inner = prefix + ("" if top else ("   " if last else "│  "))
        for i, child in enumerate(node["children"]):
            walk(child, inner, i == len(node["children"]) - 1, False)

    for root in roots:
        walk(root, "", True, True)
    return "\n".join(lines)


def summary(spans: list[dict[str, Any]]) -> str:
    """One line: traces, spans, processes."""
    traces = {s["trace_id"] for s in spans}
    services = sorted({str(s["service"]) for s in spans})
    return (
        f"{len(traces)} trace(s) {', '.join(sorted(traces))}: {len(spans)} spans from "
        f"{len(services)} processes ({', '.join(services)})"
    )


def load_run(home: Path, run_id: str) -> list[dict[str, Any]]:
    """The run's spans, or a clear error saying why there are none."""
    folder = traces_dir(home)
    spans = run_spans(read_spans(folder), run_id)
    if not spans:
        raise NotFoundError(
            f"no spans of run {run_id} in {folder}; spans are written there only when no "
            "OTLP exporter is configured (see docs/observability.md)"
        )
    return spans
