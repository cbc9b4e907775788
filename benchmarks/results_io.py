"""Writing a benchmark's result: ``OUT.md`` (the table the README quotes) and ``OUT.json`` beside it."""
import json
from pathlib import Path
from typing import Any, List


def write_results(out, md: List[str], data: Any) -> None:
    """Write the markdown lines to ``out`` and ``data`` as JSON to ``out`` with a .json suffix, then
    print the markdown (the console shows what the README gets)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    print("\n".join(md))
