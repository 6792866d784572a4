"""Closing rejected connections without a reset.

When a socket is closed while the client's request is unread, or when the
request arrives after the close, the kernel (Linux, at least) sends a TCP
reset. A client that is still sending then fails with a broken pipe or a
connection reset before it reads the response it was sent. So the server
sends its response, shuts down its write side, and hands the socket to a
LingeringCloser. That closer reads and drops what the client still sends. It
closes the socket once the client closes its side or a deadline passes.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

_READ_SIZE = 4096


@dataclass
class _Lingering:
    """A connection's close time on the time.monotonic clock, and the bytes read from it so far."""

    deadline: float
    received: int = 0


class LingeringCloser:
    """Keeps up to `max_connections` finished connections open, each for at most `linger_seconds`, in one thread.

    A connection is closed as soon as the client closes its side, when it has
    sent more than `max_bytes`, or when its time is up. Only the last two
    cases can still reset the connection, if the client goes on sending.
    """

    def __init__(self, linger_seconds: float, max_connections: int, max_bytes: int):
        self.linger_seconds = linger_seconds
        self.max_connections = max_connections
        self.max_bytes = max_bytes
        self.lock = threading.Lock()
        self.handed_over: list[socket.socket] = []  # taken by add, not yet registered by the thread
        self.open_connections = 0  # taken by add and not yet closed
        self.stopping = False
        self.thread: threading.Thread | None = None
        self.selector: selectors.BaseSelector | None = None
        self.wake_reader: socket.socket | None = None
        self.wake_writer: socket.socket | None = None

    def add(self, connection: socket.socket) -> bool:
        """Take over a non-blocking `connection` whose response is sent; return False, leaving it to the caller, when full or stopped."""
        with self.lock:
            if self.stopping or self.open_connections >= self.max_connections:
                return False
            if self.thread is None:
                self._start()
            self.open_connections += 1
            self.handed_over.append(connection)
        self._wake()
        return True

    def lingering(self) -> int:
        """Return the number of connections taken over and not yet closed."""
        with self.lock:
            return self.open_connections

    def close(self) -> None:
        """Close every connection at once and stop the thread."""
        with self.lock:
            self.stopping = True
            thread = self.thread
        if thread is not None:
            self._wake()
            thread.join()

    def _start(self) -> None:
        # Called with the lock held, on the first connection, so a server that never rejects one has no extra thread.
        self.selector = selectors.DefaultSelector()
        self.wake_reader, self.wake_writer = socket.socketpair()
        self.wake_reader.setblocking(False)
        self.wake_writer.setblocking(False)
        self.selector.register(self.wake_reader, selectors.EVENT_READ)
        self.thread = threading.Thread(target=self._run, name="lingering-closer", daemon=True)
        self.thread.start()

    def _wake(self) -> None:
        try:
            self.wake_writer.send(b"\0")
        except OSError:
            # Either the buffer is full of wake-ups that the thread has not
            # read yet, so it wakes anyway, or the thread has stopped.
            pass

    def _run(self) -> None:
        # Every connection lingers equally long, so insertion order is deadline order.
        connections: dict[socket.socket, _Lingering] = {}
        try:
            while True:
                timeout = None
                if connections:
                    first_deadline = next(iter(connections.values())).deadline
                    timeout = max(0.0, first_deadline - time.monotonic())
                for key, _ in self.selector.select(timeout):
                    if key.fileobj is self.wake_reader:
                        self._read_wake_ups()
                    else:
                        self._drain(key.fileobj, connections)

                with self.lock:
                    handed_over, self.handed_over = self.handed_over, []
                    stopping = self.stopping
                now = time.monotonic()
                for connection in handed_over:
                    self.selector.register(connection, selectors.EVENT_READ)
                    connections[connection] = _Lingering(now + self.linger_seconds)
                if stopping:
                    return

                for connection, lingering in list(connections.items()):
                    if lingering.deadline > now:
                        break
                    self._close(connection, connections)
        finally:
            # Also after an unexpected error, so that no connection stays open and add takes no more.
            with self.lock:
                self.stopping = True
                handed_over, self.handed_over = self.handed_over, []
                self.open_connections -= len(handed_over)
            for connection in handed_over:
                connection.close()
            for connection in list(connections):
                self._close(connection, connections)
            self.selector.close()
            self.wake_reader.close()
            self.wake_writer.close()

    def _read_wake_ups(self) -> None:
        try:
            while self.wake_reader.recv(_READ_SIZE):
                pass
        except BlockingIOError:
            pass

    def _drain(self, connection: socket.socket, connections: dict[socket.socket, _Lingering]) -> None:
        """Read and drop what `connection` has received; close it at end of file, on an error, or past max_bytes."""
        lingering = connections[connection]
        try:
            while True:
                data = connection.recv(_READ_SIZE)
                if not data:
                    break
                lingering.received += len(data)
                if lingering.received > self.max_bytes:
                    log.debug("closing a rejected connection that sent more than %d bytes", self.max_bytes)
                    break
        except BlockingIOError:
            return
        except OSError as error:
            log.debug("a rejected connection failed while lingering: %s", error)
        self._close(connection, connections)

    def _close(self, connection: socket.socket, connections: dict[socket.socket, _Lingering]) -> None:
        del connections[connection]
        self.selector.unregister(connection)
        connection.close()
        with self.lock:
            self.open_connections -= 1
