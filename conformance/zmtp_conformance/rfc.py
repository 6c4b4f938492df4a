"""The RFC texts the scenarios cite: finding a clause's section and the requirement keywords in it.

The texts are reference copies kept beside the checkout (../shared/specs/rfcN.md)
or wherever $ZMTP_SPECS_DIR says; the harness does not ship them.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

SPECS_DIR = Path(os.environ.get("ZMTP_SPECS_DIR") or Path(__file__).resolve().parents[3] / "shared" / "specs")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
# RFC 2119 keywords as the ZeroMQ RFCs use them; "MUST NOT" binds as MUST, "SHOULD NOT" as SHOULD.
KEYWORDS = ("MUST", "SHALL", "SHOULD", "MAY", "REQUIRED", "RECOMMENDED", "OPTIONAL")


def slug(heading: str) -> str:
    """A heading's anchor as the clause ids write it: '**NEW:** The Resource Property' -> 'new-the-resource-property'."""
    text = re.sub(r"[^a-z0-9 -]", "", heading.lower())
    return re.sub(r"\s+", "-", text.strip())


def available() -> bool:
    return SPECS_DIR.is_dir() and any(SPECS_DIR.glob("rfc*.md"))


@cache
def text(number: str) -> str:
    path = SPECS_DIR / f"rfc{number}.md"
    try:
        return path.read_text()
    except OSError as exc:
        raise LookupError(f"no text for RFC {number} at {path}: {exc}") from None


def title(number: str) -> str:
    """The RFC's short name as its front matter gives it ('47/CLIENTSERVER'), which clause ids repeat."""
    m = re.search(r"^title:\s*(\S+)", text(number), re.M)
    if m is None:
        raise LookupError(f"RFC {number}'s text has no title: line")
    return m.group(1)


def section(clause: str) -> str:
    """The text a clause id ('37/ZMTP#connection-heartbeating', or '28/REQREP' for the whole RFC) cites."""
    spec, _, anchor = clause.partition("#")
    body = text(spec.split("/", 1)[0])
    if not anchor:
        return body
    lines = body.splitlines()
    for i, line in enumerate(lines):
        m = HEADING.match(line)
        if m and slug(m.group(2)) == anchor:
            depth = len(m.group(1))
            out = [line]
            for rest in lines[i + 1 :]:
                h = HEADING.match(rest)
                if h and len(h.group(1)) <= depth:
                    break
                out.append(rest)
            return "\n".join(out)
    raise LookupError(f"RFC {spec} has no section with the anchor #{anchor}")


def keywords(passage: str) -> set[str]:
    """The requirement keywords a passage uses (upper case only, as the RFCs write them)."""
    found = set(re.findall(r"\b(MUST|SHALL|SHOULD|MAY)\b", passage))
    if re.search(r"\bREQUIRED\b", passage):
        found.add("MUST")
    if re.search(r"\bRECOMMENDED\b", passage):
        found.add("SHOULD")
    if re.search(r"\bOPTIONAL\b", passage):
        found.add("MAY")
    return found
