"""The request loop shared by the Python agents: read a line, run the op, answer.

An agent supplies an object with async methods named after the ops
(`op_socket`, `op_bind`, ...); anything missing is answered "unsupported".
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from typing import Any

from .. import protocol


class Unsupported(Exception):
    """Raised by an agent for a request its implementation cannot do."""


async def serve(agent: Any) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            req = json.loads(line)
            req_id = req["id"]
            op = req["op"]
        except (ValueError, KeyError, TypeError) as exc:
            out.write(protocol.dump(protocol.error(None, protocol.INVALID, f"bad request line: {exc}")))
            out.flush()
            continue
        handler = getattr(agent, f"op_{op}", None)
        if handler is None:
            resp = protocol.error(req_id, protocol.UNSUPPORTED, f"op {op!r} is not supported by this agent")
        else:
            try:
                fields = await handler(**{k: v for k, v in req.items() if k not in ("id", "op")})
                resp = protocol.ok(req_id, **(fields or {}))
            except Unsupported as exc:
                resp = protocol.error(req_id, protocol.UNSUPPORTED, str(exc))
            except TimeoutError as exc:
                resp = protocol.error(req_id, protocol.TIMEOUT, str(exc) or "nothing arrived in time")
            except TypeError as exc:
                resp = protocol.error(req_id, protocol.INVALID, str(exc))
            except Exception as exc:  # report, never die: the harness decides
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                resp = protocol.error(req_id, protocol.FAILED, detail)
        out.write(protocol.dump(resp))
        out.flush()
        if op == "quit":
            break


def run(agent_factory: Any) -> None:
    async def main() -> None:
        await serve(agent_factory())

    asyncio.run(main())
