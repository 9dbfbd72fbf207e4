"""A wire with a WAN's faults, for kernels without netem: two TAP devices and this
process between them, which carries every Ethernet frame from one to the other after a
delay, dropping some at random. The kernel's own TCP, on both ends, meets real loss
(it retransmits) and real latency (its round trips and windows), as across `tc netem`
(tc-netem(8): "delay" holds each packet, "loss random" drops each with a probability);
only the delay queue and the coin are ours. No jitter, so frames stay in order, as
netem keeps them without it.

`python -m tests.support.wan NAME_A NAME_B` makes the two TAP devices (TUNSETIFF on
/dev/net/tun, Linux's Documentation/networking/tuntap.rst; IFF_NO_PI: frames only),
prints "ready", then reads lines of JSON on stdin: `{"delay_ms": 100, "loss": 0.01}`
applies to both directions from the next frame on; `{}` changes nothing. Each line is
answered with the frames carried and dropped so far, `{"carried": N, "dropped": N}`. The devices are
not persistent: they go when the process ends, wherever they were moved.

A frame written to a device that is down is refused (EIO): a dead link, dropped.
"""

from __future__ import annotations

import errno
import fcntl
import heapq
import json
import os
import random
import selectors
import struct
import sys
import time

TUNSETIFF = 0x400454CA  # _IOW('T', 202, int), linux/if_tun.h
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_FRAME = 65536


def open_tap(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


class Wire:
    def __init__(self, a: int, b: int, seed: int | None = None) -> None:
        self.other = {a: b, b: a}
        self.delay = 0.0
        self.loss = 0.0
        self.coin = random.Random(seed)
        self.queue: list[tuple[float, int, int, bytes]] = []  # (due, order, to, frame)
        self.order = 0
        self.dropped = 0

    def set(self, delay_ms: float, loss: float) -> None:
        if not (0 <= delay_ms <= 10_000 and 0 <= loss < 1):
            raise ValueError(f"delay_ms 0-10000 and loss 0-1 only, not {delay_ms}, {loss}")
        self.delay, self.loss = delay_ms / 1000, loss

    def take(self, source: int) -> None:
        """Every frame waiting on `source`, onto the queue (or dropped by the coin)."""
        while True:
            try:
                frame = os.read(source, MAX_FRAME)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EIO, errno.EBADFD):  # the device is down
                    return
                raise
            if self.loss and self.coin.random() < self.loss:
                self.dropped += 1
                continue
            self.order += 1
            due = time.monotonic() + self.delay
            heapq.heappush(self.queue, (due, self.order, self.other[source], frame))

    def send_due(self) -> float | None:
        """Writes every frame that is due; seconds until the next, or None."""
        while self.queue:
            due, _order, to, frame = self.queue[0]
            wait = due - time.monotonic()
            if wait > 0:
                return wait
            heapq.heappop(self.queue)
            try:
                os.write(to, frame)
            except OSError as e:  # down (EIO) or its queue full (EAGAIN): lost, as on a wire
                if e.errno not in (errno.EIO, errno.EAGAIN, errno.EBADFD):
                    raise
        return None


def main(name_a: str, name_b: str) -> None:
    a, b = open_tap(name_a), open_tap(name_b)
    wire = Wire(a, b)
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ)
    sel.register(b, selectors.EVENT_READ)
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ)
    print("ready", flush=True)
    lines = b""
    while True:
        for key, _ in sel.select(wire.send_due()):
            if key.fd != sys.stdin.fileno():
                wire.take(key.fd)
                continue
            chunk = os.read(key.fd, 4096)
            if not chunk:
                return  # whoever started it is gone: so is the wire
            lines += chunk
            while b"\n" in lines:
                line, lines = lines.split(b"\n", 1)
                asked = json.loads(line)
                if asked:
                    wire.set(float(asked.get("delay_ms", 0)), float(asked.get("loss", 0)))
                print(json.dumps({"carried": wire.order, "dropped": wire.dropped}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
