"""Copy the demo content the installed service needs from ../shared/data into casemgr/demo_data/.

Run once by a developer; the output is committed so `casemgr demo` never needs ../shared.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "casemgr" / "demo_data"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    complaints = list(csv.DictReader(open(SHARED / "cfpb-complaints" / "complaints.csv", encoding="utf-8")))
    meta = {r["Filename"].rsplit(".", 1)[0]: r for r in csv.DictReader(open(SHARED / "cuad" / "master_clauses.csv", encoding="utf-8"))}
    contracts = []
    for path in sorted((SHARED / "cuad" / "contracts").glob("*.txt"))[:80]:
        row = meta.get(path.stem, {})
        text = path.read_text(encoding="utf-8", errors="replace")
        contracts.append({
            "file": path.name,
            "title": row.get("Document Name-Answer") or path.stem,
            "parties": row.get("Parties-Answer", ""),
            "governing_law": row.get("Governing Law-Answer", ""),
            "text": text[:12000],
        })
    with gzip.open(OUT / "demo.jsonl.gz", "wt", encoding="utf-8") as fh:
        for c in complaints:
            fh.write(json.dumps({"kind": "complaint", "id": c["id"], "product": c["product"], "text": c["narrative"]}) + "\n")
        for c in contracts:
            fh.write(json.dumps({"kind": "contract", **c}) + "\n")
    (OUT / "SOURCES.md").write_text(
        "Demo content copied from public data:\n\n"
        "- Complaint narratives: US CFPB Consumer Complaint Database (public domain), via the 1,000-row sample of\n"
        "  Applied-AI-Research-Lab/DeepSeek-LLM-and-GPT-Fall-Behind-Claude-Leads-in-Zero-Shot-Consumer-Complaints-Classification (MIT).\n"
        "- Contracts: CUAD v1, The Atticus Project (CC BY 4.0); the first 12,000 characters of 80 contracts.\n"
    )
    print(f"wrote {len(complaints)} complaints and {len(contracts)} contracts", file=sys.stderr)


if __name__ == "__main__":
    main()
