import asyncio
import logging

import pytest

import zmtp


@pytest.fixture
async def ctx():
    context = zmtp.Context()
    yield context
    await asyncio.wait_for(context.term(), 10)


@pytest.fixture
async def zctx():
    import zmq.asyncio

    context = zmq.asyncio.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture(autouse=True)
def _log_level(caplog):
    caplog.set_level(logging.INFO, logger="zmtp")
