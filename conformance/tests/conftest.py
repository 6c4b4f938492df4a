import asyncio
import os

import pytest

pytest_plugins = ["pytester"]

# The tests that run small matrices name local peers (impl, libzmq, czmq); the
# docker backend's peers are tested where asked for (test_backends.py).
os.environ.setdefault("ZMTP_CONFORMANCE_BACKEND", "local")


# Contexts for the tests that drive impl and libzmq directly (not through agents), shaped as
# impl's own tests have them; module-level imports would load zmtp for every conformance test.
@pytest.fixture
async def ctx():
    import zmtp

    context = zmtp.Context()
    yield context
    await asyncio.wait_for(context.term(), 10)


@pytest.fixture
async def zctx():
    import zmq.asyncio

    context = zmq.asyncio.Context()
    yield context
    context.destroy(linger=0)
