#!/usr/bin/env python3
"""Markdown tables of the latest results in bench/results/ (what bench/README.md shows).

    .venv/bin/python bench/report.py [--date YYYY-MM-DD]
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def latest(kind: str, backend: str, date: str | None) -> dict | None:
    files = sorted(RESULTS.glob(f"{kind}-{backend}-{date or '*'}.json"))
    return json.loads(files[-1].read_text()) if files else None


def fleet_tables(date):
    out = []
    for backend in ("sqlite", "postgresql"):
        res = latest("fleet", backend, date)
        if not res:
            continue
        m = res["machine"]
        reg = res["register"]
        out.append(f"**fleet, {backend}** ({res['date']}, {m['cpus']} CPUs {m['cpu']}, Python {m['python']}"
                   + (f", {res['postgresql']} with {res['postgresql_settings']}" if backend == "postgresql" else "")
                   + f"; {res['options']['servers']} servers, {res['options']['duration_s']:g} s per run, "
                   f"{res['options']['rounds']} rounds, {res['options']['threads']} threads)\n")
        out.append(f"Registration: {reg['rps']:.0f} servers/s at 16 connections (p50 {reg['p50_ms']:.1f} ms, "
                   f"p99 {reg['p99_ms']:.1f} ms).\n")
        out.append("| phase | run | req/s | p50 ms | p99 ms | server CPU µs/req | other CPUs busy |")
        out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for phase, data in res["summary"].items():
            for name, c in data["cells"].items():
                out.append(f"| {phase} | {name} | {c['rps']:.0f} | {c['p50_ms']:.1f} | {c['p99_ms']:.1f} | "
                           f"{c['server_cpu_us_per_req']:.0f} | {c.get('other_cpus_busy', 0):.2f} |")
        out.append("")
        out.append("| phase | ratio | mean | per round |")
        out.append("| --- | --- | ---: | --- |")
        for phase, data in res["summary"].items():
            for name, r in data["ratios"].items():
                mark = (" (target ≥ 70 %: " + ("met" if r["mean"] >= 0.7 else "**missed**") + ")") \
                    if name == "checkin/bare@64" else ""
                out.append(f"| {phase} | {name} | {100 * r['mean']:.0f} %{mark} | "
                           f"{', '.join(f'{100 * x:.0f} %' for x in r['rounds'])} |")
        out.append("")
    return out


def patches_tables(date):
    out = []
    imports = []
    for backend in ("sqlite", "postgresql"):
        res = latest("patches", backend, date)
        if not res:
            continue
        m = res["machine"]
        opts = res["options"]
        imports += [(backend, res, imp) for imp in res.get("imports", [])]
        if not res["summary"]:
            continue
        serving = res["serving"]
        out.append(f"**patches, {backend}** ({res['date']}, {m['cpus']} CPUs {m['cpu']}, Python {m['python']}"
                   + (f", {res['postgresql']} with {res['postgresql_settings']}" if backend == "postgresql" else "")
                   + f"; {opts['servers']} servers, {serving['kernels']} kernels with a "
                   f"{serving['kpatch_bin_bytes'] // 1024} KiB kpatch.bin, {opts['duration_s']:g} s per run, "
                   f"{opts['rounds']} rounds, {opts['threads']} threads)\n")
        out.append("| phase | run | req/s | p50 ms | p99 ms | MiB/s | server CPU µs/req | other CPUs busy |")
        out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for phase, data in res["summary"].items():
            for name, c in data["cells"].items():
                bad = "" if c.get("all_ok", True) else " (unexpected answers)"
                out.append(f"| {phase} | {name}{bad} | {c['rps']:.0f} | {c['p50_ms']:.1f} | {c['p99_ms']:.1f} | "
                           f"{c['mib_per_s']:.0f} | {c['server_cpu_us_per_req']:.0f} | {c.get('other_cpus_busy', 0):.2f} |")
        out.append("")
        out.append("| phase | ratio | mean | per round |")
        out.append("| --- | --- | ---: | --- |")
        for phase, data in res["summary"].items():
            for name, r in data["ratios"].items():
                out.append(f"| {phase} | {name} | {100 * r['mean']:.0f} % | "
                           f"{', '.join(f'{100 * x:.0f} %' for x in r['rounds'])} |")
        out.append("")
    if imports:
        out.append(f"**patchset import** (`kc.eportal kcare deploy ARCHIVE`, a fresh process; {imports[0][1]['date']}; "
                   "start-up alone = the same command's `kcare list`)\n")
        out.append("| backend | archive | archive MiB | kernels × kpatch.bin | wall s | MiB/s | CPU s | peak RSS MiB "
                   "| start-up alone |")
        out.append("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |")
        for backend, _res, imp in imports:
            out.append(f"| {backend} | {imp['archive']} | {imp['archive_mib']:.0f} | {imp['kernels']} × "
                       f"{imp['kpatch_bin_bytes'] // 1024} KiB | {imp['import_wall_s']:.1f} | "
                       f"{imp['archive_mib_per_s']:.0f} | {imp['import_cpu_s']:.1f} | {imp['peak_rss_mib']:.0f} | "
                       f"{imp['startup_wall_s']:.1f} s, {imp['startup_peak_rss_mib']:.0f} MiB |")
        out.append("")
    return out


def pages_tables(date):
    out = []
    results = {b: latest("pages", b, date) for b in ("sqlite", "postgresql")}
    results = {b: r for b, r in results.items() if r}
    if not results:
        return out
    any_res = next(iter(results.values()))
    m = any_res["machine"]
    sizes = sorted({s["servers"] for r in results.values() for s in r["sizes"]})
    out.append(f"**pages** ({any_res['date']}, {m['cpus']} CPUs {m['cpu']}, Python {m['python']}; "
               f"median / p95 of {any_res['options']['requests']} requests, ms; target p95 ≤ 150 ms at 1M)\n")
    head = "| page |" + "".join(f" {b} {s // 1000}k |" for b in results for s in sizes)
    out.append(head)
    out.append("| --- |" + " ---: |" * (len(results) * len(sizes)))
    names = [p["page"] for p in any_res["sizes"][0]["pages"]]
    for i, _ in enumerate(names):
        row = None
        cells = []
        for res in results.values():
            for size in sizes:
                found = [s for s in res["sizes"] if s["servers"] == size]
                if not found or i >= len(found[0]["pages"]):
                    cells.append("–")
                    continue
                p = found[0]["pages"][i]
                row = row or re.sub(r", [\d,]+\)", ")", p["page"])
                miss = "**" if not p["meets_target"] else ""
                cells.append(f"{miss}{p['median_ms']:.0f} / {p['p95_ms']:.0f}{miss}")
        out.append(f"| {row} |" + "".join(f" {c} |" for c in cells))
    out.append("")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date")
    args = parser.parse_args()
    print("\n".join(fleet_tables(args.date) + patches_tables(args.date) + pages_tables(args.date)))


if __name__ == "__main__":
    main()
