#!/usr/bin/env python3
"""check_report.py REPORT.json ROWS BATCHES: the JSON report of dsa-run is complete and its
time split adds up (each batch's parts are measured back to back on rank 0), and start-up is
listed phase by phase."""
import json
import sys

report, rows, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = json.load(open(report))
errors = []
if d["workload_shape"]["rows"] != rows or d["workload_shape"]["batches"] != batches:
    errors.append(f"workload shape {d['workload_shape']} != {rows} rows, {batches} batches")
if len(d["batches"]) != batches:
    errors.append(f"{len(d['batches'])} batch records, expected {batches}")
if sum(b["rows"] for b in d["batches"]) != rows:
    errors.append("batch rows do not add up to the workload's rows")
parts = ["read", "upload", "index", "attend", "download", "other", "gather", "write", "idle"]
for b in d["batches"]:
    s = b["split"]
    if abs(sum(s[p] for p in parts) - s["total"]) > 1e-9:
        errors.append(f"batch {b['batch']}: split parts do not add up to its total")
    if not (b["seconds"] <= s["total"] + 1e-6):
        errors.append(f"batch {b['batch']}: wall {b['seconds']} exceeds its split total {s['total']}")
    if min(s[p] for p in parts) < 0:
        errors.append(f"batch {b['batch']}: negative time in {s}")
    if b["ranks"] < 1 or b["ranks"] > d["ranks"]:
        errors.append(f"batch {b['batch']}: {b['ranks']} ranks of {d['ranks']}")
summary = d["summary"]["split"]
for p in parts + ["total"]:
    if abs(summary[p] - sum(b["split"][p] for b in d["batches"])) > 1e-6:
        errors.append(f"summary {p} is not the sum over batches")
if d["summary"]["rows"] != rows:
    errors.append("summary rows")
phases = d["summary"]["setup_phases"]
names = [p["phase"] for p in phases]
for need in ("checks", "backend", "results file", "KV read", "KV load"):
    if need not in names:
        errors.append(f"start-up phase {need!r} missing from {names}")
if any(p["seconds"] < 0 for p in phases):
    errors.append(f"negative start-up phase in {phases}")
if sum(p["seconds"] for p in phases) > d["summary"]["setup_seconds"] + 1e-6:
    errors.append("start-up phases add up to more than the start-up")
for e in errors:
    print("FAIL", e)
print(f"{report}: {'ok' if not errors else str(len(errors)) + ' problems'}")
sys.exit(1 if errors else 0)
