import os

pytest_plugins = ["pytester"]

# The tests that run small matrices name local peers (impl, libzmq, czmq); the
# docker backend's peers are tested where asked for (test_backends.py).
os.environ.setdefault("ZMTP_CONFORMANCE_BACKEND", "local")
