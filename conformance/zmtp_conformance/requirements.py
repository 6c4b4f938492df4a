"""The requirement inventory: every normative sentence of the RFCs the harness tests, with a stable id.

An entry is one sentence that uses an RFC 2119 keyword (MUST, SHALL, SHOULD,
MAY, REQUIRED, RECOMMENDED, OPTIONAL, and their negations), quoted as the RFC
text says it, with the roles it binds. Ids are `<rfc>/<section-slug>/<n>`, n
counting the keyword sentences of the section in document order, so an id
stays put when the inventory is regenerated from the same text.

The inventory is built from the RFC texts (rfc.py) and the reviewed overrides
in conformance/requirements/overrides.yaml (drop boilerplate and descriptive
uses, split compound sentences, merge duplicates, set roles, mark untestable),
then written to conformance/requirements/inventory.json, which is committed:
the loader and the coverage report read that file, so neither needs the RFC
texts. `python -m zmtp_conformance.requirements` rewrites it; `--check` only
says whether it is current.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from . import rfc

HERE = Path(__file__).resolve().parent
REQUIREMENTS_DIR = HERE.parent / "requirements"
INVENTORY_PATH = REQUIREMENTS_DIR / "inventory.json"
OVERRIDES_PATH = REQUIREMENTS_DIR / "overrides.yaml"

# The RFCs the inventory covers, in the order the report lists them.
RFCS = ("23", "37", "24", "25", "26", "27", "28", "29", "30", "31", "32", "47", "48", "49")

# Longest first, so "MUST NOT" is found as itself and not as MUST.
KEYWORD = re.compile(
    r"\b(MUST NOT|SHALL NOT|SHOULD NOT|NOT RECOMMENDED|NOT REQUIRED|MUST|SHALL|SHOULD|REQUIRED|RECOMMENDED|MAY|OPTIONAL)\b"
)
# A sentence that uses several keywords is filed under its strongest.
STRENGTH = (
    "MUST NOT",
    "MUST",
    "REQUIRED",
    "SHALL NOT",
    "SHALL",
    "SHOULD NOT",
    "SHOULD",
    "NOT RECOMMENDED",
    "RECOMMENDED",
    "MAY",
    "OPTIONAL",
    "NOT REQUIRED",
)
# RFC 2119 gives SHALL and REQUIRED the force of MUST, RECOMMENDED that of SHOULD, OPTIONAL that of MAY.
FORCE = {
    "MUST NOT": "MUST",
    "MUST": "MUST",
    "REQUIRED": "MUST",
    "SHALL NOT": "MUST",
    "SHALL": "MUST",
    "SHOULD NOT": "SHOULD",
    "SHOULD": "SHOULD",
    "NOT RECOMMENDED": "SHOULD",
    "RECOMMENDED": "SHOULD",
    "MAY": "MAY",
    "OPTIONAL": "MAY",
    "NOT REQUIRED": "MAY",
}
FORCES = ("MUST", "SHOULD", "MAY")

SOCKET_TYPE = re.compile(
    r"\b(REQ|REP|DEALER|ROUTER|XPUB|XSUB|PUB|SUB|PUSH|PULL|PAIR|CLIENT|SERVER|RADIO|DISH|SCATTER|GATHER)\b"
)
ROLE_WORDS = (
    ("sender", re.compile(r"\bsend(er|ing peer)s?\b", re.I)),
    ("receiver", re.compile(r"\b(receiv(er|ing peer)|recipient)s?\b", re.I)),
    ("client", re.compile(r"\bclients?\b")),
    ("server", re.compile(r"\bservers?\b")),
    ("peer", re.compile(r"\bpeers?\b", re.I)),
)
ROLES = ("sender", "receiver", "client", "server", "peer")
# Abbreviations whose full stop does not end a sentence.
ABBREVIATIONS = re.compile(r"\b(e\.g|i\.e|etc|vs|cf)\.$")


class InventoryError(Exception):
    """The inventory or its overrides cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class Requirement:
    id: str
    rfc: str
    section: str  # the heading's slug
    heading: str
    keyword: str  # as the RFC writes it, MUST NOT kept as such
    quote: str
    roles: tuple[str, ...]
    untestable: str | None = None  # why no wire-level test can check it

    @property
    def force(self) -> str:
        """MUST, SHOULD or MAY: what the keyword binds as."""
        return FORCE[self.keyword]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["roles"] = list(self.roles)
        if self.untestable is None:
            del out["untestable"]
        return out


@dataclass
class Sentence:
    """A keyword sentence as found in the text, before the overrides."""

    id: str
    rfc: str
    section: str
    heading: str
    text: str
    keyword: str
    roles: tuple[str, ...] = field(default_factory=tuple)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def strongest(text: str) -> str | None:
    found = set(KEYWORD.findall(text))
    return min(found, key=STRENGTH.index) if found else None


def infer_roles(sentence: str, heading: str) -> tuple[str, ...]:
    """The roles a sentence binds, by simple rules the overrides correct.

    In a section about one socket type ('The REQ Socket Type') every sentence binds
    that type, whatever peers it mentions; elsewhere the socket types the sentence
    names, then the generic roles (sender, receiver, client, server), and 'peer' when
    it names none of those.
    """
    own = SOCKET_TYPE.findall(heading) if re.search(r"socket type", heading, re.I) else []
    if own:
        return tuple(dict.fromkeys(own))
    types = SOCKET_TYPE.findall(sentence)
    words = [name for name, pattern in ROLE_WORDS if pattern.search(sentence) and name != "peer"]
    out = tuple(dict.fromkeys(types + words))
    return out or ("peer",)


def blocks(markdown: str) -> list[tuple[str, str]]:
    """(heading, text) for each prose paragraph and list item; front matter and fenced code are skipped."""
    lines = markdown.splitlines()
    i = 0
    if lines and lines[0].strip() == "---":
        i = next((j + 1 for j in range(1, len(lines)) if lines[j].strip() == "---"), len(lines))
    out: list[tuple[str, str]] = []
    heading = ""
    current: list[str] = []
    fenced = False

    def flush() -> None:
        if current:
            out.append((heading, normalise(" ".join(current))))
            current.clear()

    for line in lines[i:]:
        if line.lstrip().startswith("```"):
            flush()
            fenced = not fenced
            continue
        if fenced:
            continue
        m = rfc.HEADING.match(line)
        if m:
            flush()
            heading = m.group(2)
            continue
        if not line.strip():
            flush()
            continue
        item = re.match(r"^\s*(?:[*+-]|\d+[.)])\s+(.*)$", line)
        if item:
            flush()
            current.append(item.group(1))
            continue
        current.append(line.strip())
    flush()
    return out


def sentences(block: str) -> list[str]:
    """Split a paragraph into sentences at '. ', '? ' and '! ' before a capital, a quote or markup,
    never inside a code span and never after e.g., i.e., etc."""
    spans = {}

    def hide(m: re.Match[str]) -> str:
        key = f"\x00{len(spans)}\x00"
        spans[key] = m.group(0)
        return key

    hidden = re.sub(r"`[^`]*`", hide, block)
    parts: list[str] = []
    start = 0
    for m in re.finditer(r"[.!?]['\")\]*]*\s+(?=[A-Z\"'(*\[`\x00_])", hidden):
        head = hidden[start : m.start() + 1]
        if ABBREVIATIONS.search(head):
            continue
        parts.append(hidden[start : m.end()].strip())
        start = m.end()
    parts.append(hidden[start:].strip())
    out = []
    for part in parts:
        for key, value in spans.items():
            part = part.replace(key, value)
        if part:
            out.append(part)
    return out


def scan(number: str, markdown: str) -> list[Sentence]:
    """Every keyword sentence of one RFC, numbered within its section."""
    out: list[Sentence] = []
    slugs: dict[str, str] = {}  # heading -> slug, a repeated heading gets -2, -3
    counts: dict[str, int] = {}
    seen_headings: list[str] = []
    for heading, block in blocks(markdown):
        if heading not in slugs:
            base = rfc.slug(heading) or "untitled"
            n = sum(1 for h in seen_headings if rfc.slug(h) == base)
            slugs[heading] = base if n == 0 else f"{base}-{n + 1}"
            seen_headings.append(heading)
        slug = slugs[heading]
        for text in sentences(block):
            keyword = strongest(text)
            if keyword is None:
                continue
            counts[slug] = counts.get(slug, 0) + 1
            out.append(
                Sentence(
                    f"{number}/{slug}/{counts[slug]}", number, slug, heading, text, keyword, infer_roles(text, heading)
                )
            )
    return out


@dataclass
class Overrides:
    drop: dict[str, str]  # id -> why it is not a requirement
    drop_patterns: list[str]  # sentences starting with one of these are boilerplate
    split: dict[str, list[str]]  # id -> the parts, each a substring of the sentence
    merge: dict[str, str]  # duplicate id -> the id it is merged into
    roles: dict[str, list[str]]
    untestable: dict[str, str]  # id -> why no wire-level test can check it
    known_gaps: dict[str, str]  # id -> the scenario that would cover it

    @classmethod
    def load(cls, path: Path = OVERRIDES_PATH) -> Overrides:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InventoryError(f"{path}: cannot read the overrides: {exc}") from None
        known = {"drop", "drop_patterns", "split", "merge", "roles", "untestable", "known_gaps"}
        extra = set(data) - known
        if extra:
            raise InventoryError(f"{path}: unknown keys {sorted(extra)} (known: {sorted(known)})")
        return cls(
            drop=dict(data.get("drop") or {}),
            drop_patterns=list(data.get("drop_patterns") or []),
            split={k: list(v) for k, v in (data.get("split") or {}).items()},
            merge=dict(data.get("merge") or {}),
            roles={k: list(v) for k, v in (data.get("roles") or {}).items()},
            untestable=dict(data.get("untestable") or {}),
            known_gaps=dict(data.get("known_gaps") or {}),
        )


def apply(found: list[Sentence], ov: Overrides) -> list[Requirement]:
    """The requirements the overrides make of the scanned sentences; an override naming no sentence is an error."""
    ids = {s.id for s in found}
    problems = []
    for what, table in (("drop", ov.drop), ("split", ov.split), ("merge", ov.merge)):
        problems += [f"{what}: {k!r} is not a sentence id of the RFC texts" for k in table if k not in ids]
    if problems:
        raise InventoryError("overrides.yaml: " + "; ".join(problems))
    out: list[Requirement] = []
    for s in found:
        if s.id in ov.drop or s.id in ov.merge or any(s.text.startswith(p) for p in ov.drop_patterns):
            continue
        if s.id in ov.split:
            parts = []
            for k, quote in enumerate(ov.split[s.id]):
                if normalise(quote) not in s.text:
                    raise InventoryError(f"overrides.yaml: split {s.id}: {quote!r} is not part of {s.text!r}")
                keyword = strongest(quote)
                if keyword is None:
                    raise InventoryError(f"overrides.yaml: split {s.id}: {quote!r} has no requirement keyword")
                parts.append((f"{s.id}{chr(ord('a') + k)}", normalise(quote), keyword))
        else:
            parts = [(s.id, s.text, s.keyword)]
        for rid, quote, keyword in parts:
            roles = tuple(ov.roles.get(rid) or ov.roles.get(s.id) or infer_roles(quote, s.heading))
            out.append(Requirement(rid, s.rfc, s.section, s.heading, keyword, quote, roles, ov.untestable.get(rid)))
    made = {r.id for r in out}
    for what, table in (("roles", ov.roles), ("untestable", ov.untestable), ("known_gaps", ov.known_gaps)):
        problems += [f"{what}: {k!r} is not a requirement id" for k in table if k not in made and k not in ov.split]
    problems += [
        f"merge: {k!r} is merged into {v!r}, which is not a requirement" for k, v in ov.merge.items() if v not in made
    ]
    if problems:
        raise InventoryError("overrides.yaml: " + "; ".join(problems))
    return out


def verify(requirements: list[Requirement], text_of: Callable[[str], str]) -> list[str]:
    """What is wrong with an inventory: a quote not in its RFC, an id used twice, an unknown keyword or role."""
    problems = []
    seen: set[str] = set()
    texts: dict[str, str] = {}
    for r in requirements:
        if r.id in seen:
            problems.append(f"{r.id}: the id is used twice")
        seen.add(r.id)
        if r.rfc not in texts:
            texts[r.rfc] = normalise(text_of(r.rfc))
        if normalise(r.quote) not in texts[r.rfc]:
            problems.append(f"{r.id}: the quote is not in RFC {r.rfc}: {r.quote!r}")
        if r.keyword not in FORCE:
            problems.append(f"{r.id}: {r.keyword!r} is not a requirement keyword")
        elif r.keyword not in KEYWORD.findall(r.quote):
            problems.append(f"{r.id}: the quote does not say {r.keyword}")
        wrong = [x for x in r.roles if x not in ROLES and not SOCKET_TYPE.fullmatch(x)]
        if wrong or not r.roles:
            problems.append(f"{r.id}: roles {list(r.roles)} (each one of {', '.join(ROLES)} or a socket type)")
    return problems


def build(overrides: Overrides | None = None) -> list[Requirement]:
    """The inventory from the RFC texts and the overrides (needs the texts: rfc.available())."""
    ov = overrides or Overrides.load()
    found = [s for number in RFCS for s in scan(number, rfc.text(number))]
    out = apply(found, ov)
    problems = verify(out, rfc.text)
    if problems:
        raise InventoryError("the inventory does not check out:\n" + "\n".join(problems))
    return out


def dumps(requirements: list[Requirement]) -> str:
    doc = {
        "generated_by": "python -m zmtp_conformance.requirements",
        "rfcs": list(RFCS),
        "requirements": [r.to_dict() for r in requirements],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def parse(doc: dict[str, Any], where: str = "inventory") -> dict[str, Requirement]:
    out: dict[str, Requirement] = {}
    for i, entry in enumerate(doc.get("requirements") or []):
        try:
            r = Requirement(
                entry["id"],
                entry["rfc"],
                entry["section"],
                entry["heading"],
                entry["keyword"],
                entry["quote"],
                tuple(entry["roles"]),
                entry.get("untestable"),
            )
        except (KeyError, TypeError) as exc:
            raise InventoryError(f"{where}: requirements[{i}]: missing or malformed field {exc}") from None
        if r.id in out:
            raise InventoryError(f"{where}: requirements[{i}]: the id {r.id!r} is used twice")
        out[r.id] = r
    return out


def load(path: Path = INVENTORY_PATH) -> dict[str, Requirement]:
    """The committed inventory, by id, in RFC and document order."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InventoryError(f"cannot read the requirement inventory {path}: {exc}") from None
    return parse(doc, str(path))


@cache
def inventory() -> dict[str, Requirement]:
    return load()


def lookup(requirement_id: str) -> Requirement:
    try:
        return inventory()[requirement_id]
    except KeyError:
        raise LookupError(f"{requirement_id!r} is not in the requirement inventory ({INVENTORY_PATH})") from None


def main(argv: list[str] | None = None) -> int:
    """Write inventory.json from the RFC texts and the overrides (`--check`: only say whether it is current)."""
    args = sys.argv[1:] if argv is None else argv
    if not rfc.available():
        print(f"the RFC texts are not at {rfc.SPECS_DIR} (set ZMTP_SPECS_DIR)", file=sys.stderr)
        return 2
    try:
        made = build()
    except InventoryError as exc:
        print(exc, file=sys.stderr)
        return 1
    wanted = dumps(made)
    current = INVENTORY_PATH.read_text() if INVENTORY_PATH.exists() else ""
    if current == wanted:
        return 0
    if "--check" in args:
        print(
            f"{INVENTORY_PATH} is not what the RFC texts and overrides make: run python -m zmtp_conformance.requirements"
        )
        return 1
    INVENTORY_PATH.parent.mkdir(parents=True, exist_ok=True)
    INVENTORY_PATH.write_text(wanted)
    print(f"wrote {INVENTORY_PATH} ({len(made)} requirements)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
