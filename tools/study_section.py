"""Copies a study's summary and claims tables from its `sweep report` (report.md) into a
generated section of docs/benchmarks.md, with the date, the machine and the command, so the
verdict in the docs is the report's own (`make parity` runs it for burn-vs-pytorch).
Standard library only.

  python study_section.py --report results/reports/burn-vs-pytorch/report.md \
      --name burn-vs-pytorch --command "make parity" [--doc docs/benchmarks.md]
"""
import argparse
import datetime
import os
import platform

import doc_sections


def tables_after(text, heading):
    """The first Markdown table after `heading` (its lines), or []."""
    if heading not in text:
        return []
    lines = text[text.index(heading):].splitlines()[1:]
    out, inside = [], False
    for line in lines:
        if line.startswith("|"):
            out.append(line)
            inside = True
        elif inside:
            break
        elif line.startswith("## "):
            break
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--title", default=None)
    ap.add_argument("--doc", default=os.path.join(os.path.dirname(__file__), "..", "docs", "benchmarks.md"))
    args = ap.parse_args()
    text = open(args.report, encoding="utf-8").read()
    summary = tables_after(text, "## 1. Summary")
    claims = tables_after(text, "## 3. Claims")
    if not summary or not claims:
        raise SystemExit(f"{args.report}: no summary or claims table (was the study run and reported?)")
    start, end = f"<!-- study:{args.name}:start -->", f"<!-- study:{args.name}:end -->"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([
        start,
        f"### {args.title or 'Study ' + args.name} (`{args.command}`)",
        "",
        f"Measured {now} on {platform.machine()}, {os.cpu_count()} cores; tables copied from "
        f"`{os.path.relpath(args.report)}` (`sweep report`).",
        "",
        *summary,
        "",
        *claims,
        "",
        end,
    ])
    doc_sections.replace_section(args.doc, start, end, section)
    print("\n".join(summary + [""] + claims))


if __name__ == "__main__":
    main()
