"""Captures: record each cell's traffic, dissect it as ZMTP, and check every byte against the RFCs.

`pcap` reads and writes capture files, `tcp` reassembles streams, `dissect`
decodes ZMTP from a byte stream, `validator` checks what it decoded,
`curvebox` opens CURVE boxes with the keys a `keylog` holds, `sniffer`
records loopback traffic with tcpdump while the matrix runs, `proxy`
records what no sniffer sees (ipc, no root) and `synth` writes such
recordings as pcaps.
"""
