"""Waiting for a bulk lookup to end, through the state its page reads."""

import time
import uuid

from customers.services.bulk import state as bulk_state

POLL_SECONDS = 0.01


def wait_for_batch(batch_id: uuid.UUID | str, within: float = 30) -> bulk_state.BatchState:
    """The batch's state once it is finished: its rows, its end on record and its place given back."""
    deadline = time.monotonic() + within
    while True:
        state = bulk_state.read_batch(batch_id)
        assert state is not None, "no such batch"
        if state.finished:
            return state
        assert time.monotonic() < deadline, "the batch did not end in time"
        time.sleep(POLL_SECONDS)
