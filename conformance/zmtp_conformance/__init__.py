"""zmtp_conformance: the ZMTP conformance and interop harness.

Peers (implementations under test) are driven through agents that speak the
JSON-lines control protocol in `protocol.py` (documented in
docs/agent-protocol.md); scenarios are YAML files in scenarios/; the matrix
runner is a pytest plugin (`plugin.py`); `cli.py` is `zmtp-conformance`.

PYTEST_DONT_REWRITE: `zmtp-conformance run` has imported this package before
it starts pytest, which would warn that the plugin's asserts cannot be
rewritten; the plugin reports failures itself and needs no rewriting.
"""

__version__ = "0.1.0"
