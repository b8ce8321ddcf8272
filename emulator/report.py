"""``./build.sh report [--out FILE]``: one self-contained HTML page of what a running environment did.

From the environment's own records (``emulator.observe``): the state machine drawn from its
deployed definition (states, Choice branches, Retry and Catch edges, a layered layout computed
here); the executions, each one's path over that drawing with per-state durations, retries and
errors, failed ones marked, filtered by tenant and status; outcomes per tenant (normalized, ignored
and rejected with their reasons); how full the batches are; deliveries by channel and result; the
latency from receipt (SQS) to delivery. No network at view time: CSS, script and SVG are inline.

``python -m emulator.report [--out FILE] [--instance NAME | --endpoint URL --outputs FILE]``
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator import observe
from emulator.stack import STATE_ROOT

DEFAULT_LIMIT = 500  # executions shown (the most recent); the totals count every one

# -- the drawing -------------------------------------------------------------------------------------

NODE_W, NODE_H, COL_GAP, ROW_GAP, MARGIN = 190, 54, 150, 46, 40


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # next, choice, default, catch, retry
    label: str


def edges_of(definition: dict[str, Any]) -> list[Edge]:
    """Every transition the definition allows: Next, each Choice branch and its Default, each Catch,
    and one Retry self-edge per task that retries (its retriers in the label)."""
    found: list[Edge] = []
    for name, spec in definition.get("States", {}).items():
        if spec.get("Next"):
            found.append(Edge(name, spec["Next"], "next", ""))
        for choice in spec.get("Choices", []):
            found.append(Edge(name, choice["Next"], "choice", _condition(choice)))
        if spec.get("Default"):
            found.append(Edge(name, spec["Default"], "default", "Default"))
        for catch in spec.get("Catch", []):
            found.append(Edge(name, catch["Next"], "catch", "Catch: " + ", ".join(catch.get("ErrorEquals", []))))
        if spec.get("Retry"):
            retriers = "; ".join(f"{', '.join(r.get('ErrorEquals', []))} ×{r.get('MaxAttempts', 3)}" for r in spec["Retry"])
            found.append(Edge(name, name, "retry", "Retry: " + retriers))
    return found


def _condition(choice: dict[str, Any]) -> str:
    variable = choice.get("Variable", "")
    for key, value in choice.items():
        if key not in ("Variable", "Next"):
            shown = json.dumps(value) if not isinstance(value, str) else value
            operator = "=" if key.endswith("Equals") else key
            return f"{variable.removeprefix('$.')} {operator} {shown}"
    return "choice"


def layers(definition: dict[str, Any], edges: list[Edge]) -> dict[str, int]:
    """Each state's layer: its longest distance from StartAt over forward edges (a depth-first walk
    drops the edges that close a cycle); states not reachable go after the rest."""
    states = list(definition.get("States", {}))
    following: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        if e.source != e.target:
            following[e.source].append(e.target)
    forward: list[tuple[str, str]] = []
    seen: set[str] = set()
    on_path: set[str] = set()

    def walk(node: str) -> None:
        seen.add(node)
        on_path.add(node)
        for nxt in following[node]:
            if nxt in on_path:
                continue  # a back edge
            forward.append((node, nxt))
            if nxt not in seen:
                walk(nxt)
        on_path.discard(node)

    start = str(definition.get("StartAt", ""))
    if start in definition.get("States", {}):
        walk(start)
    layer = {start: 0} if start else {}
    for _ in states:  # longest path: relax at most |states| times
        for a, b in forward:
            if a in layer and layer.get(b, -1) < layer[a] + 1:
                layer[b] = layer[a] + 1
    last = max(layer.values(), default=-1)
    for name in states:
        layer.setdefault(name, last + 1)
    return layer


def layout(definition: dict[str, Any]) -> tuple[dict[str, tuple[float, float]], list[Edge], float, float]:
    """Node centres (left to right by layer, each layer's states stacked and centred), the edges,
    and the drawing's size."""
    edges = edges_of(definition)
    layer = layers(definition, edges)
    columns: dict[int, list[str]] = defaultdict(list)
    for name in definition.get("States", {}):
        columns[layer[name]].append(name)
    tallest = max((len(c) for c in columns.values()), default=1)
    height = 2 * MARGIN + 60 + tallest * NODE_H + (tallest - 1) * ROW_GAP + 60
    centre_y = height / 2
    positions: dict[str, tuple[float, float]] = {}
    for index, names in sorted(columns.items()):
        span = len(names) * NODE_H + (len(names) - 1) * ROW_GAP
        for row, name in enumerate(names):
            x = MARGIN + index * (NODE_W + COL_GAP) + NODE_W / 2
            y = centre_y - span / 2 + row * (NODE_H + ROW_GAP) + NODE_H / 2
            positions[name] = (x, y)
    width = 2 * MARGIN + len(columns) * NODE_W + (len(columns) - 1) * COL_GAP
    return positions, edges, width, height


def _edge_path(edge: Edge, positions: dict[str, tuple[float, float]], layer_of: dict[str, int], parallel: int) -> tuple[str, float, float]:
    """An SVG path for one edge, and where its label goes."""
    sx, sy = positions[edge.source]
    if edge.kind == "retry":
        left, right, top = sx - 30, sx + 30, sy - NODE_H / 2
        return f"M {left} {top} C {left - 10} {top - 55}, {right + 10} {top - 55}, {right} {top}", sx, top - 48
    tx, ty = positions[edge.target]
    x1, x2 = sx + NODE_W / 2, tx - NODE_W / 2
    span = layer_of[edge.target] - layer_of[edge.source]
    if span == 1 and not parallel:
        mid = (x1 + x2) / 2
        return f"M {x1} {sy} C {mid} {sy}, {mid} {ty}, {x2} {ty}", mid, (sy + ty) / 2 - 8
    if span >= 1:
        # over the states in between (or beside a parallel edge): an arc above or below the row
        lift = (NODE_H / 2 + 40 + 26 * (parallel // 2)) * (1 if parallel % 2 else -1)
        apex = (sy + lift if lift > 0 else min(sy, ty) + lift) if span > 1 else (sy + ty) / 2 + lift
        return f"M {x1} {sy} C {x1 + 60} {apex}, {x2 - 60} {apex}, {x2} {ty}", (x1 + x2) / 2, apex + (12 if lift > 0 else -2)
    # backwards or within a layer: leave from below and come back round
    bottom = max(sy, ty) + NODE_H / 2 + 50
    return (f"M {sx} {sy + NODE_H / 2} C {sx} {bottom}, {tx} {bottom}, {tx} {ty + NODE_H / 2}", (sx + tx) / 2, bottom - 10)


def svg(definition: dict[str, Any]) -> str:
    """The state machine as an inline SVG: one ``g.node`` per state, one ``g.edge`` per transition."""
    positions, edges, width, height = layout(definition)
    layer_of = layers(definition, edges)
    parts = [
        f'<svg id="machine" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'height="{height:.0f}" role="img" aria-label="the deployed state machine">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="context-stroke"/></marker></defs>',
    ]
    pairs: Counter[tuple[str, str]] = Counter()
    for edge in edges:
        key = (edge.source, edge.target)
        parallel = pairs[key]
        pairs[key] += 1
        if edge.kind != "retry" and layer_of[edge.target] - layer_of[edge.source] > 1:
            parallel = max(parallel, 1 if edge.kind == "catch" else 2)
        d, lx, ly = _edge_path(edge, positions, layer_of, parallel)
        label = html.escape(edge.label)
        short = label.split(":")[0] if edge.kind in ("retry", "catch") else label  # the whole label is the edge's tooltip
        parts.append(
            f'<g class="edge {edge.kind}" data-from="{html.escape(edge.source)}" data-to="{html.escape(edge.target)}" '
            f'data-kind="{edge.kind}"><title>{html.escape(edge.source)} → {html.escape(edge.target)}: {edge.kind} {label}</title>'
            f'<path d="{d}" marker-end="url(#arrow)"/>'
            f'<text class="label" x="{lx:.0f}" y="{ly:.0f}">{short}</text>'
            f'<text class="count" x="{lx:.0f}" y="{ly + 13:.0f}"></text></g>'
        )
    for name, spec in definition.get("States", {}).items():
        x, y = positions[name]
        kind = spec.get("Type", "?")
        parts.append(
            f'<g class="node type-{html.escape(kind.lower())}" data-state="{html.escape(name)}" tabindex="0">'
            f"<title>{html.escape(name)} ({html.escape(kind)}){': ' + html.escape(spec.get('Comment', '')[:300]) if spec.get('Comment') else ''}</title>"
            f'<rect x="{x - NODE_W / 2:.0f}" y="{y - NODE_H / 2:.0f}" width="{NODE_W}" height="{NODE_H}" rx="{NODE_H / 2 if kind in ("Succeed", "Fail") else 8}"/>'
            f'<text class="name" x="{x:.0f}" y="{y - 4:.0f}">{html.escape(name)}</text>'
            f'<text class="sub" x="{x:.0f}" y="{y + 14:.0f}" data-default="{html.escape(kind)}">{html.escape(kind)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


# -- the numbers ------------------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summarize(runs: list[dict[str, Any]], normalize: observe.NormalizeLog, deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    """Outcomes per tenant, batch fill, deliveries by channel and result, latency from receipt."""
    tenants: dict[str, dict[str, Any]] = defaultdict(lambda: {"normalized": 0, "ignored": Counter(), "rejected": Counter()})
    evaluated: dict[str, set[str]] = defaultdict(set)
    for run in runs:
        if run["mode"] == "events":
            evaluated[run["tenant"]].update(run["event_uids"])
    for tenant, uids in evaluated.items():
        tenants[tenant]["normalized"] = len(uids)
    seen_records: set[tuple[str, int]] = set()
    for line in normalize.records:
        key = (str(line.get("message_id")), int(line.get("record_index") or 0))
        if key in seen_records:
            continue  # a message SQS delivered twice logs its records twice, under the same names
        seen_records.add(key)
        tenant = str(line.get("tenant_id") or "(no tenant)")
        tenants[tenant][str(line.get("outcome"))][str(line.get("reason"))] += 1
    fills = [run["fill"] for run in runs if run["fill"] is not None]
    buckets = Counter(min(9, int(fill * 10)) for fill in fills)
    channels: dict[str, Counter[str]] = defaultdict(Counter)
    for d in deliveries:
        channels[d["channel"]][d["status"]] += 1
    at = observe.delivered_ms(deliveries, runs)
    latency: dict[str, list[float]] = defaultdict(list)
    for d in deliveries:
        received = normalize.received_ms(d["event_uid"]) if d["event_uid"] else None
        if d["delivery_id"] in at and received:
            seconds = max(0.0, (at[d["delivery_id"]] - received) / 1000)
            latency[d["channel"]].append(seconds)
            latency["all channels"].append(seconds)
    return {
        "tenants": {
            t: {"normalized": v["normalized"], "ignored": dict(v["ignored"]), "rejected": dict(v["rejected"])}
            for t, v in sorted(tenants.items())
        },
        "metrics": normalize.metrics,
        "fill": {
            "batches": len(fills),
            "mean": sum(fills) / len(fills) if fills else None,
            "min": min(fills, default=None),
            "max": max(fills, default=None),
            "buckets": [buckets.get(i, 0) for i in range(10)],
        },  # fmt: skip
        "channels": {c: dict(v) for c, v in sorted(channels.items())},
        "latency": {
            c: {"count": len(v), "p50": _percentile(v, 0.5), "p90": _percentile(v, 0.9), "max": max(v)} for c, v in sorted(latency.items())
        },
    }


FAILED = ("FAILED", "TIMED_OUT", "ABORTED")


def _for_page(run: dict[str, Any]) -> dict[str, Any]:
    """What the page needs of an execution: causes made readable, the states it failed in marked
    (its last, and those with errors when it failed), and a state not left timed until the end."""
    page = {k: v for k, v in run.items() if k not in ("event_uids", "output")} | {"events": len(run["event_uids"])}
    page["cause"] = readable_cause(run["cause"]) or None
    failed = run["status"] in FAILED
    states = []
    for n, state in enumerate(run["states"]):
        errors = [{**e, "cause": readable_cause(e["cause"])} for e in state["errors"]]
        last = n == len(run["states"]) - 1
        states.append({**state, "errors": errors, "failed": failed and (last or bool(errors)),
                       "until_ms": state["exited_ms"] or (run["stop_ms"] if last else None)})  # fmt: skip
    page["states"] = states
    return page


def collect(env: observe.Environment, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """Everything the page shows, as plain data."""
    definition = observe.state_machine_definition(env)
    runs = observe.executions(env, definition)
    normalize = observe.normalize_log(env)
    deliveries = observe.ledger(env)
    shown = [_for_page(run) for run in runs[-limit:]]
    return {
        "generated_ms": int(time.time() * 1000),
        "endpoint": env.endpoint,
        "state_machine": env.outputs["state_machine_arn"],
        "definition": definition,
        "executions": shown,
        "executions_total": len(runs),
        "statuses": dict(Counter(run["status"] for run in runs)),
        "summary": summarize(runs, normalize, deliveries),
    }


# -- the page ---------------------------------------------------------------------------------------

CSS = """
:root { --ok: #1a7f37; --fail: #cf222e; --run: #9a6700; --ink: #1f2328; --mute: #656d76; --line: #d0d7de; --accent: #0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0; background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 14px 28px; }
header h1 { margin: 0; font-size: 20px; } header p { margin: 2px 0 0; color: #c9d1d9; font-size: 12px; }
main { padding: 18px 28px; max-width: 1500px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin-bottom: 18px; }
h2 { font-size: 16px; margin: 0 0 10px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 18px; }
td.nowrap { white-space: nowrap; }
.grid section { margin-bottom: 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { color: var(--mute); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; font-weight: 600; color: #fff; }
.badge.SUCCEEDED { background: var(--ok); } .badge.FAILED, .badge.TIMED_OUT, .badge.ABORTED { background: var(--fail); }
.badge.RUNNING { background: var(--run); }
tr.execution { cursor: pointer; } tr.execution:hover { background: #f3f6fa; }
tr.execution.selected { background: #ddf4ff; }
tr.execution.failed td:first-child { box-shadow: inset 4px 0 0 var(--fail); }
tr.execution.failed .name::before { content: "✗ "; color: var(--fail); font-weight: 700; }
.chip { display: inline-block; border: 1px solid var(--line); border-radius: 4px; padding: 0 5px; margin: 1px 2px; font-size: 12px; white-space: nowrap; }
.chip.failed { border-color: var(--fail); color: var(--fail); }
.retries { color: var(--run); font-weight: 600; }
.error { color: var(--fail); font-size: 12px; }
.mute { color: var(--mute); }
.filters { display: flex; gap: 14px; align-items: center; margin-bottom: 10px; flex-wrap: wrap; }
.filters label { font-size: 13px; color: var(--mute); }
#drawing { overflow-x: auto; }
#machine .node rect { fill: #fff; stroke: #8c959f; stroke-width: 1.5; }
#machine .node.type-choice rect { fill: #fff8c5; }
#machine .node.type-succeed rect { fill: #dafbe1; } #machine .node.type-fail rect { fill: #ffebe9; }
#machine .node text { text-anchor: middle; pointer-events: none; }
#machine .node .name { font-weight: 600; font-size: 13px; } #machine .node .sub { font-size: 11px; fill: var(--mute); }
#machine .node.visited rect { stroke: var(--accent); stroke-width: 3; }
#machine .node.failed rect { stroke: var(--fail); stroke-width: 3.5; fill: #ffebe9; }
#machine .node.dim { opacity: .45; }
#machine .edge path { fill: none; stroke: #8c959f; stroke-width: 1.5; }
#machine .edge.catch path { stroke: var(--fail); stroke-dasharray: 6 4; }
#machine .edge.retry path { stroke: var(--run); stroke-dasharray: 3 3; }
#machine .edge.choice path, #machine .edge.default path { stroke: #6e7781; }
#machine .edge text { font-size: 10.5px; fill: var(--mute); text-anchor: middle; }
#machine .edge .count { font-weight: 700; fill: var(--accent); }
#machine .edge.taken path { stroke: var(--accent); stroke-width: 3.5; }
#machine .edge.taken.catch path, #machine .edge.taken.retry path { stroke: var(--fail); }
#machine .edge.unused { opacity: .35; }
.legend { font-size: 12px; color: var(--mute); margin-top: 6px; }
.bar { display: inline-block; height: 10px; background: var(--accent); vertical-align: middle; border-radius: 2px; }
#detail { font-size: 13px; margin-top: 8px; }
"""

SCRIPT = """
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const runs = data.executions;
  const svg = document.getElementById("machine");
  const rows = Array.from(document.querySelectorAll("tr.execution"));
  const tenantFilter = document.getElementById("filter-tenant");
  const statusFilter = document.getElementById("filter-status");
  const detail = document.getElementById("detail");
  let selected = null;

  function seconds(ms) { return ms == null ? "…" : (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s"; }
  function took(s) {
    if (s.type === "Succeed" || s.type === "Fail") return "";
    return s.until_ms ? seconds(s.until_ms - s.entered_ms) + (s.exited_ms ? "" : " until the end") : "running";
  }
  function errorsOf(s) {
    const seen = new Map();
    s.errors.forEach(e => { const k = e.error + (e.cause ? " (" + e.cause.slice(0, 200) + ")" : ""); seen.set(k, (seen.get(k) || 0) + 1); });
    return Array.from(seen, ([k, n]) => "; " + (n > 1 ? n + " × " : "") + k).join("");
  }
  function visible() {
    const t = tenantFilter.value, s = statusFilter.value;
    return runs.filter(r => (!t || r.tenant === t) && (!s || r.status === s));
  }
  function edgeKey(from, to, kind) { return from + "\\u0000" + to + "\\u0000" + kind; }
  function takenKeys(run) {
    const keys = {};
    run.transitions.forEach(t => {
      let kind = t.kind;
      if (kind === "choice") {
        const el = svg.querySelector('.edge[data-from="' + CSS.escape(t.from) + '"][data-to="' + CSS.escape(t.to) + '"][data-kind="choice"]');
        if (!el) kind = "default";
      }
      const k = edgeKey(t.from, t.to, kind);
      keys[k] = (keys[k] || 0) + 1;
    });
    return keys;
  }
  function paint() {
    const chosen = selected === null ? null : runs[selected];
    const shown = chosen ? [chosen] : visible();
    const counts = {}, states = {}, failedStates = {};
    shown.forEach(run => {
      const keys = takenKeys(run);
      Object.keys(keys).forEach(k => { counts[k] = (counts[k] || 0) + (chosen ? keys[k] : 1); });
      run.states.forEach(s => { states[s.name] = (states[s.name] || 0) + 1; if (s.failed) failedStates[s.name] = (failedStates[s.name] || 0) + 1; });
    });
    svg.querySelectorAll(".edge").forEach(el => {
      const k = edgeKey(el.dataset.from, el.dataset.to, el.dataset.kind);
      const n = counts[k] || 0;
      el.classList.toggle("taken", n > 0);
      el.classList.toggle("unused", n === 0);
      el.querySelector(".count").textContent = n ? (chosen ? (el.dataset.kind === "retry" ? n + " retr" + (n > 1 ? "ies" : "y") : "") : n + " run" + (n > 1 ? "s" : "")) : "";
    });
    svg.querySelectorAll(".node").forEach(el => {
      const name = el.dataset.state, n = states[name] || 0;
      el.classList.toggle("visited", n > 0);
      el.classList.toggle("dim", n === 0);
      el.classList.toggle("failed", !!failedStates[name]);
      const sub = el.querySelector(".sub");
      if (chosen) {
        const s = chosen.states.find(x => x.name === name);
        sub.textContent = s ? took(s) + (s.attempts > 1 ? " · " + s.attempts + " attempts" : "") + (s.failed ? " · failed" : "") : sub.dataset.default;
      } else {
        const bad = failedStates[name] ? " · " + failedStates[name] + " failed" : "";
        sub.textContent = n ? n + " of " + shown.length + " runs" + bad : sub.dataset.default;
      }
    });
    document.getElementById("drawing-caption").textContent = chosen
      ? "the path of " + chosen.name + " (" + chosen.status + "); click it again to show every execution"
      : "the paths of the " + shown.length + " executions shown; click an execution to see its own";
    if (chosen) {
      const lines = chosen.states.map(s => s.name + ": " + (took(s) || "reached") +
        (s.attempts > 1 ? ", " + s.attempts + " attempts" : "") + errorsOf(s));
      detail.textContent = "";
      const head = document.createElement("strong");
      head.textContent = chosen.name + (chosen.error ? " failed: " + chosen.error + (chosen.cause ? " (" + chosen.cause.slice(0, 300) + ")" : "") : "");
      detail.appendChild(head);
      const list = document.createElement("ul");
      lines.forEach(l => { const li = document.createElement("li"); li.textContent = l; list.appendChild(li); });
      detail.appendChild(list);
    } else {
      detail.textContent = "";
    }
  }
  function filter() {
    const t = tenantFilter.value, s = statusFilter.value;
    let n = 0;
    rows.forEach(row => {
      const run = runs[Number(row.dataset.index)];
      const show = (!t || run.tenant === t) && (!s || run.status === s);
      row.hidden = !show;
      n += show ? 1 : 0;
    });
    document.getElementById("shown-count").textContent = n + " of " + runs.length + " shown";
    if (selected !== null && rows[selected] && rows[selected].hidden) select(null);
    paint();
  }
  function select(index) {
    rows.forEach(r => r.classList.remove("selected"));
    selected = index === selected ? null : index;
    if (selected !== null) rows[selected].classList.add("selected");
    paint();
  }
  rows.forEach(row => row.addEventListener("click", () => select(Number(row.dataset.index))));
  tenantFilter.addEventListener("change", filter);
  statusFilter.addEventListener("change", filter);
  filter();
  document.body.dataset.ready = "true";
})();
"""


def _stamp(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]


def _duration(start: int | None, stop: int | None) -> str:
    if not start or not stop:
        return "…"
    seconds = (stop - start) / 1000
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def readable_cause(cause: str | None) -> str:
    """A Lambda error's cause is its JSON (type, message, stack trace): the message is what helps."""
    if not cause:
        return ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    return str(parsed.get("errorMessage") or cause) if isinstance(parsed, dict) else cause


def _execution_rows(runs: list[dict[str, Any]]) -> str:
    rows = []
    for index, run in enumerate(runs):
        chips = []
        for state in run["states"]:
            if state["type"] in ("Succeed", "Fail"):
                took = ""
            elif state["exited_ms"]:
                took = _duration(state["entered_ms"], state["exited_ms"])
            else:
                took = f"{_duration(state['entered_ms'], run['stop_ms'])} until the run failed" if run["stop_ms"] else "running"
            retries = f' <span class="retries">×{state["attempts"]}</span>' if state["attempts"] > 1 else ""
            bad = " failed" if state["errors"] and (run["status"] != "SUCCEEDED") else ""
            errors = "; ".join(e["error"] for e in state["errors"])
            title = f' title="{html.escape(errors)}"' if errors else ""
            chips.append(f'<span class="chip{bad}"{title}>{html.escape(state["name"])} {took}{retries}</span>')
        failed = run["status"] in ("FAILED", "TIMED_OUT", "ABORTED")
        error = (
            f'<div class="error">{html.escape(run["error"] or "")}: {html.escape(readable_cause(run["cause"])[:240])}</div>'
            if run["error"]
            else ""
        )
        rows.append(
            f'<tr class="execution{" failed" if failed else ""}" data-index="{index}" data-tenant="{html.escape(run["tenant"])}" '
            f'data-status="{run["status"]}"><td><span class="badge {run["status"]}">{run["status"]}</span></td>'
            f'<td class="name">{html.escape(run["name"])}{error}</td><td>{html.escape(run["tenant"])}</td><td>{html.escape(run["mode"])}</td>'
            f'<td class="num">{run["events"] if run["mode"] == "events" else "-"}</td><td class="nowrap">{_stamp(run["start_ms"])}</td>'
            f'<td class="num nowrap">{_duration(run["start_ms"], run["stop_ms"])}</td><td>{"".join(chips)}</td></tr>'
        )
    return "\n".join(rows)


def _outcome_rows(summary: dict[str, Any]) -> str:
    rows = []
    for tenant, v in summary["tenants"].items():

        def reasons(counts: dict[str, int]) -> str:
            total = sum(counts.values())
            detail = ", ".join(f"{html.escape(r)} {n}" for r, n in sorted(counts.items()))
            return f'{total} <span class="mute">{detail}</span>' if total else "0"

        rows.append(f'<tr><td>{html.escape(tenant)}</td><td class="num">{v["normalized"]}</td><td>{reasons(v["ignored"])}</td>'
                    f'<td>{reasons(v["rejected"])}</td></tr>')  # fmt: skip
    m = summary["metrics"]
    if m:
        rows.append(f'<tr class="mute"><td>metrics (EMF, all tenants)</td><td class="num">{m.get("RecordsNormalized", 0)}</td>'
                    f'<td>{m.get("RecordsIgnored", 0)}</td><td>{m.get("RecordsRejected", 0)}</td></tr>')  # fmt: skip
    return "\n".join(rows) or '<tr><td colspan="4" class="mute">no records yet</td></tr>'


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def render(data: dict[str, Any]) -> str:
    """The page, self-contained."""
    summary = data["summary"]
    runs = data["executions"]
    tenants = sorted({run["tenant"] for run in runs})
    statuses = sorted({run["status"] for run in runs})
    fill = summary["fill"]
    peak = max(fill["buckets"]) or 1
    fill_rows = "".join(
        f'<tr><td>{i * 10}–{i * 10 + 10}%</td><td class="num">{n}</td><td><span class="bar" style="width:{120 * n / peak:.0f}px"></span></td></tr>'
        for i, n in enumerate(fill["buckets"])
        if n
    )
    channel_results = sorted({r for c in summary["channels"].values() for r in c})
    channel_rows = "".join(
        f"<tr><td>{html.escape(c)}</td>" + "".join(f'<td class="num">{counts.get(r, 0)}</td>' for r in channel_results) + "</tr>"
        for c, counts in summary["channels"].items()
    )
    latency_rows = "".join(
        f'<tr><td>{html.escape(c)}</td><td class="num">{v["count"]}</td><td class="num">{_secs(v["p50"])}</td>'
        f'<td class="num">{_secs(v["p90"])}</td><td class="num">{_secs(v["max"])}</td></tr>'
        for c, v in summary["latency"].items()
    )
    # Data inside a <script> element: every "<" as its JSON escape, so no value (an execution's
    # cause can quote an event) can close the element or open a comment in it.
    payload = json.dumps({"executions": runs}, separators=(",", ":")).replace("<", "\\u003c")
    status_line = ", ".join(f"{k} {v}" for k, v in sorted(data["statuses"].items())) or "none"
    generated = datetime.fromtimestamp(data["generated_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    option = "".join
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><title>coachflow report</title><style>{CSS}</style></head>
<body>
<header><h1>coachflow: what the pipeline did</h1>
<p>{html.escape(data["state_machine"])} on {html.escape(data["endpoint"])} · generated {generated} · executions: {data["executions_total"]} ({html.escape(status_line)})</p></header>
<main>
<section><h2>State machine (the deployed definition)</h2>
<div id="drawing">{svg(data["definition"])}</div>
<div class="legend"><span id="drawing-caption"></span>. Solid: Next and Choice branches; dashed red: Catch; dotted: Retry. Blue: taken.</div>
<div id="detail"></div></section>
<section><h2>Executions</h2>
<div class="filters"><label>tenant <select id="filter-tenant"><option value="">all</option>{option(f'<option value="{html.escape(t)}">{html.escape(t)}</option>' for t in tenants)}</select></label>
<label>status <select id="filter-status"><option value="">all</option>{option(f'<option value="{s}">{s}</option>' for s in statuses)}</select></label>
<span class="mute" id="shown-count"></span>{f'<span class="mute">(the latest {len(runs)} of {data["executions_total"]})</span>' if len(runs) < data["executions_total"] else ""}</div>
<table id="executions"><thead><tr><th>status</th><th>execution</th><th>tenant</th><th>mode</th><th class="num">events</th><th>started (UTC)</th>
<th class="num">took</th><th>path: state, duration, attempts</th></tr></thead><tbody>
{_execution_rows(runs)}
</tbody></table></section>
<div class="grid">
<section><h2>Outcomes per tenant</h2><table id="outcomes"><thead><tr><th>tenant</th><th class="num">normalized</th><th>ignored (reasons)</th>
<th>rejected (reasons)</th></tr></thead><tbody>{_outcome_rows(summary)}</tbody></table>
<p class="mute">normalized: distinct events evaluated; ignored and rejected: from the normalize function's log (rejected ones are in the raw-events DLQ).</p></section>
<section><h2>Batch fill</h2><p>{fill["batches"]} batches · mean {_pct(fill["mean"])} of the {html.escape("256 KiB")} execution input · min {_pct(fill["min"])} · max {_pct(fill["max"])}</p>
<table id="fill"><tbody>{fill_rows}</tbody></table></section>
<section><h2>Deliveries by channel and result</h2><table id="channels"><thead><tr><th>channel</th>{"".join(f'<th class="num">{html.escape(r)}</th>' for r in channel_results)}</tr></thead>
<tbody>{channel_rows or '<tr><td class="mute">no deliveries</td></tr>'}</tbody></table><p class="mute">the ledger in the state table, one item per delivery.</p></section>
<section><h2>Latency: receipt to delivery</h2><table id="latency"><thead><tr><th>channel</th><th class="num">delivered</th><th class="num">p50</th>
<th class="num">p90</th><th class="num">max</th></tr></thead><tbody>{latency_rows or '<tr><td class="mute" colspan="5">nothing delivered</td></tr>'}</tbody></table>
<p class="mute">from SQS receiving the event's message to the end of the TriggerNotifications run that delivered it.</p></section>
</div>
</main>
<script type="application/json" id="report-data">{payload}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def write(env: observe.Environment, out: Path, limit: int = DEFAULT_LIMIT) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(collect(env, limit)), encoding="utf-8")
    return out


def default_path(name: str) -> Path:
    return STATE_ROOT / "reports" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./build.sh report", description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="the HTML file to write (default .coachflow/reports/report-<time>.html)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"executions listed, the most recent (default {DEFAULT_LIMIT})")
    observe.add_environment_arguments(parser)
    args = parser.parse_args(argv)
    env = observe.env_from_args(args, "report")
    if env is None:
        return 2
    path = write(env, Path(args.out) if args.out else default_path("report"), args.limit)
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
