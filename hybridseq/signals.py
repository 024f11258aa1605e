"""Stop requests: Ctrl-C (SIGINT), SIGTERM and SIGHUP ask a training run to stop at the next
step boundary, where its state is whole, instead of killing it mid-step.

A job scheduler, ``timeout``, a container stop and a closed terminal send SIGTERM or SIGHUP;
each then ends the run the way Ctrl-C does: the current step finishes, ``last`` is saved, and
the run reports the signal (the command exits with 128 + its number). A second Ctrl-C while
the first is pending raises ``KeyboardInterrupt`` at once, for a run that must stop now; a
SIGTERM or SIGHUP then (a launcher passing the stop on) changes nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class StopRequests:
    """While entered (in the main thread), the stop signals set ``signum`` instead of acting.

    ``signum`` is 0 until a stop is requested. Outside the main thread, where Python cannot
    install handlers, nothing is installed and ``signum`` stays 0.
    """

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self._previous[s] = signal.signal(s, self._request)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _request(self, signum: int, frame: FrameType | None) -> None:
        if self.signum and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = self.signum or signum


def exit_code(signum: int) -> int:
    """The shell's exit status of a process ended by ``signum``: 130 for Ctrl-C."""
    return 128 + signum
