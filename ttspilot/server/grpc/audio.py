"""A validated job's audio as gRPC messages: admitted, in order, within the request's deadline.

Both services send through here, so admission (RESOURCE_EXHAUSTED when full), --request_timeout
(DEADLINE_EXCEEDED; it covers sending, as for HTTP), the client's own deadline and a client that
leaves (gRPC cancels the call, and the pipeline stops the remaining segments) behave the same for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import anyio
import grpc

from ttspilot.server.pipeline import SynthesisJob
from ttspilot.server.responses import encoded_chunks, encoded_whole, request_id_from, warning_headers
from ttspilot.server.state import ServerState
from ttspilot.server.stats import RequestTiming

# A whole file goes out in pieces: gRPC clients refuse messages over 4 MiB unless told otherwise.
WHOLE_PIECE_BYTES = 256 * 1024


def client_request_id(context: grpc.aio.ServicerContext) -> str:
    given = next((value for key, value in context.invocation_metadata() or () if key == "x-request-id"), "")
    return request_id_from(given if isinstance(given, str) else "")


async def _pieces(state: ServerState, job: SynthesisJob, timing: RequestTiming) -> AsyncIterator[bytes]:
    """A stream's bytes as each chunk is made; a whole file (its sizes in its header) in pieces once complete."""
    if job.stream:
        async with aclosing(encoded_chunks(state.pipeline.audio(job, timing), job)) as chunks:
            async for data in chunks:
                yield data
        return
    whole = await encoded_whole(state.pipeline, job, timing)
    for start in range(0, len(whole), WHOLE_PIECE_BYTES):
        yield whole[start:start + WHOLE_PIECE_BYTES]


async def send_audio(state: ServerState, job: SynthesisJob, context: grpc.aio.ServicerContext, route: str,
                     message: Callable[[int, bytes], Any]) -> tuple[RequestTiming, int]:
    """Admit `job` and write `message(sequence, data)` for each piece; its timing and the count once all are written.

    Initial metadata carries x-request-id, x-sample-rate and, for audio that will not sound right, warning.
    """
    timing = state.pipeline.start(job, client_request_id(context), route)
    metadata = [("x-request-id", timing.request_id), ("x-sample-rate", str(job.sample_rate))]
    metadata += [(name.lower(), value) for name, value in warning_headers(state.engine, job, timing).items()]
    await context.send_initial_metadata(metadata)
    sequence = 0
    async with aclosing(_pieces(state, job, timing)) as pieces:  # a cancelled call stops its segments at once
        async for data in pieces:
            await _write(state, timing, context, message(sequence, data))
            sequence += 1
    return timing, sequence


async def _write(state: ServerState, timing: RequestTiming, context: grpc.aio.ServicerContext, message: Any) -> None:
    """One message, within what is left of the request's deadline: the pipeline bounds the wait for audio, this
    the wait for a client that reads slowly (HTTP/2 flow control holds the write until it reads)."""
    try:
        with anyio.fail_after(state.pipeline.seconds_left(timing)):
            await context.write(message)
    except TimeoutError:
        raise state.pipeline.past_deadline() from None
