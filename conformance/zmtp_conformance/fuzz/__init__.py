"""Hostile input at scale: the peer fuzzer and the fuzz targets of the harness's own parsers.

inputs (what one fuzz input is) <- grammar, mutate (where inputs come from) <- target (a live peer
through its agent, and the raw peer against it) <- oracles (what counts as a failure) <- minimise,
findings (reproducers) <- campaign (the loop). parsers holds the atheris targets. Nothing here
imports impl (`zmtp`) except the impl decoder target in parsers, which fuzzes impl itself.
"""
