"""YAML documents with their node trees, parsed once, by libyaml where PyYAML was built with it.

The tables (scenarios, deviations) are read by every test worker at collection, and their errors
name lines, which needs the node tree as well as the data. PyYAML's pure-Python parser took about
a third of a short matrix run's CPU doing that twice per file.
"""

from __future__ import annotations

from typing import Any

import yaml

Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str) -> tuple[Any, yaml.Node | None]:
    """The document in `text` and its root node (None for an empty document); raises yaml.YAMLError."""
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()
