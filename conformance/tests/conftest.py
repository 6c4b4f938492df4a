import asyncio
import os

import pytest

pytest_plugins = ["pytester"]

# The tests that run small matrices name local peers (impl, libzmq, czmq); the
# docker backend's peers are tested where asked for (test_backends.py).
os.environ.setdefault("ZMTP_CONFORMANCE_BACKEND", "local")


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """The inner runs find no project configuration, and the pytest-asyncio of this environment
    warns about each run whose ini leaves its loop scope unset: these say it, as pyproject.toml does."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


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
