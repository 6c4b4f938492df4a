"""The reference tables in the docs, made from the vocabulary, never by hand.

An agent author reads docs/agent-protocol.md to learn which socket options scenarios may set and
what the agent must do with each; that table is generated here between marker comments, so it
cannot drift from `vocabulary.OPTIONS`. `python -m zmtp_conformance.reference` rewrites it;
`--check` says whether it is current (a test runs it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from . import vocabulary

DOC = Path(__file__).resolve().parents[2] / "docs" / "agent-protocol.md"


def _type(schema: dict) -> str:  # type: ignore[type-arg]
    if "oneOf" in schema:
        return " or ".join(_type(s) for s in schema["oneOf"])
    kind = schema.get("type", "any")
    if kind == "string" and schema.get("minLength") == 40 == schema.get("maxLength"):
        return "Z85 key (40 characters)"
    if kind == "string" and "pattern" in schema:
        return "hex"
    return {"integer": "count", "number": "seconds", "boolean": "boolean", "string": "text", "null": "null"}.get(
        str(kind), str(kind)
    )


def options_table() -> str:
    rows = ["| option | value | what the agent does with it |", "|---|---|---|"]
    for name, opt in vocabulary.OPTIONS.items():
        rows.append(f"| `{name}` | {_type(opt.schema)} | {opt.doc} |")
    return "\n".join(rows)


TABLES = {"options": options_table}


def render(text: str) -> str:
    """`text` with every generated block (between `<!-- NAME:begin -->` and `<!-- NAME:end -->`) made anew."""
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- {name}:begin[^>]*-->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            raise LookupError(f"{DOC}: no <!-- {name}:begin --> ... <!-- {name}:end --> block")
        table = make()
        text = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    return vocabulary.regenerate(DOC, render(DOC.read_text()), argv, "zmtp_conformance.reference")


if __name__ == "__main__":
    sys.exit(main())
