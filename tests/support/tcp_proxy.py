"""A TCP proxy in a background thread: network delay, round-trip counting, and outages.

The benchmarks and the fault tests put it between the service and PostgreSQL::

    proxy = TcpProxy(target=("127.0.0.1", 5432), delay_ms=5).start()
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/todo"
    ...
    proxy.stats()    # {"flights": 3, "connections_opened": 1, "connections_open": 1}
    proxy.cut()      # an outage: open connections reset, new ones refused
    proxy.restore()  # the database is back
    proxy.drop()     # open connections reset (say, by a pooler), new ones accepted
    proxy.stop()

Delay: every chunk is held ``delay_ms`` before it is passed on, in each direction and in
order, so one network round trip costs ``2 * delay_ms``.

Flights: a flight is the client sending after the server last spoke on that connection
(the first bytes of a connection are one too). For a request/response protocol such as
PostgreSQL's, that is one network round trip.

A connection reset here is reset for real (RST, not FIN), on both sides, as when a network
fails or a peer is killed. While cut, a new connection is accepted and reset at once, so a
client's connect fails fast.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import struct
import threading

_CHUNK = 65536
_UPSTREAM_CONNECT_TIMEOUT = 10.0
_CONTROL_TIMEOUT = 5.0


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection abruptly, with a TCP reset."""
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


class _Link:
    """One proxied connection: the client's side, the server's side once connected."""

    def __init__(self, client: asyncio.StreamWriter):
        self.writers = [client]
        self.connected = False
        self.aborted = False
        self.server_spoke_last = True  # so that the client's first bytes are a flight

    def abort(self) -> None:
        if self.aborted:
            return
        self.aborted = True
        for writer in self.writers:
            _reset(writer)


class TcpProxy:
    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432), delay_ms: float = 0):
        self.target = target
        self.delay_ms = delay_ms  # may be changed while running; applies to bytes read after
        self.port: int | None = None
        self._counts_lock = threading.Lock()
        self._flights = 0
        self._opened = 0
        self._open = 0
        self._down = False
        self._links: set[_Link] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # --- lifecycle (call from any thread) ------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self) -> TcpProxy:
        """Listen on 127.0.0.1 on a free port (then in ``.port``) and serve in a thread."""
        if self._thread is not None:
            raise RuntimeError("the proxy is already started")
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(_CONTROL_TIMEOUT):
            raise RuntimeError("the proxy did not start in time")
        if self._startup_error is not None:
            raise RuntimeError("the proxy could not start") from self._startup_error
        return self

    def stop(self) -> None:
        """Reset every connection, stop listening and end the thread."""
        if self._thread is None:
            return
        if self._loop is not None and self._loop.is_running() and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(_CONTROL_TIMEOUT)
        self._thread = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- control (call from any thread) --------------------------------------------------

    def stats(self) -> dict[str, int]:
        with self._counts_lock:
            return {
                "flights": self._flights,
                "connections_opened": self._opened,
                "connections_open": self._open,
            }

    def reset_counts(self) -> None:
        with self._counts_lock:
            self._flights = 0
            self._opened = 0

    def cut(self) -> None:
        """An outage: refuse new connections and reset every open one."""
        self._down = True
        self._reset_all()

    def restore(self) -> None:
        """End an outage: accept connections again."""
        self._down = False

    def drop(self) -> None:
        """Reset every open connection and keep accepting new ones."""
        self._reset_all()

    def _reset_all(self) -> None:
        self._on_loop(self._abort_all)
        # transport.abort() closes its socket in a callback it schedules on the loop: once a
        # callback scheduled after those has run, every reset has been sent.
        self._on_loop(lambda: None)

    @property
    def is_cut(self) -> bool:
        return self._down

    # --- the event loop's side -----------------------------------------------------------

    def _on_loop(self, function) -> None:
        """Run `function` on the proxy's loop and wait until it has run."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return
        done = threading.Event()

        def call() -> None:
            try:
                function()
            finally:
                done.set()

        loop.call_soon_threadsafe(call)
        if not done.wait(_CONTROL_TIMEOUT):
            raise RuntimeError("the proxy's event loop did not answer")

    def _abort_all(self) -> None:
        for link in list(self._links):
            link.abort()

    def _run(self) -> None:
        # select() times out to the microsecond; epoll rounds up to whole milliseconds, which
        # would add up to 1 ms to every delayed chunk. (Its limit, file descriptors below
        # 1024, is far above what a test process uses.)
        loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
        try:
            loop.run_until_complete(self._serve(loop))
        except BaseException as exc:  # reported to start() if it happened before listening
            self._startup_error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        self._stopping = asyncio.Event()
        connections: set[asyncio.Task] = set()

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # A plain callback, so that these tasks are ours to end (asyncio would otherwise
            # wrap a coroutine in a task of its own, and log when it is cancelled).
            task = loop.create_task(self._accept(reader, writer))
            connections.add(task)
            task.add_done_callback(connections.discard)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._loop = loop
        self._ready.set()
        await self._stopping.wait()
        server.close()
        self._abort_all()
        if connections:
            # Aborted connections end by themselves; one still connecting upstream may not.
            _, pending = await asyncio.wait(set(connections), timeout=1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        link = _Link(client_writer)
        if self._down:
            link.abort()
            return
        self._links.add(link)
        try:
            try:
                server_reader, server_writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.target), _UPSTREAM_CONNECT_TIMEOUT
                )
            except (OSError, asyncio.TimeoutError):
                link.abort()
                return
            link.writers.append(server_writer)
            if link.aborted or self._down:  # cut or dropped while we were connecting
                _reset(server_writer)
                link.abort()
                return
            link.connected = True
            with self._counts_lock:
                self._opened += 1
                self._open += 1
            await asyncio.gather(
                self._pump(link, client_reader, server_writer, from_client=True),
                self._pump(link, server_reader, client_writer, from_client=False),
            )
        except Exception:
            link.abort()
        finally:
            self._links.discard(link)
            if link.connected:
                with self._counts_lock:
                    self._open -= 1
            for writer in link.writers:
                writer.transport.close()

    async def _pump(self, link: _Link, reader, writer, *, from_client: bool) -> None:
        """Read one direction and pass it on, each chunk `delay_ms` after it arrived."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        delivery = asyncio.create_task(self._deliver(link, queue, writer))
        try:
            while not link.aborted:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                if from_client:
                    if link.server_spoke_last:
                        with self._counts_lock:
                            self._flights += 1
                    link.server_spoke_last = False
                else:
                    link.server_spoke_last = True
                queue.put_nowait((loop.time() + self.delay_ms / 1000, data))
        except OSError:
            link.abort()  # a reset on one side is a reset on the other
        queue.put_nowait(None)
        await delivery

    async def _deliver(self, link: _Link, queue: asyncio.Queue, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await queue.get()
            if item is None or link.aborted:
                break
            due, data = item
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if link.aborted:
                return
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                link.abort()
                return
        if item is None and not link.aborted:
            # The sender closed its side: pass the end of the stream on, after its data.
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except OSError:
                link.abort()
