"""Framing for the child's structured channel.

The child writes Python-level stdout/stderr and its final result as frames on one pipe, so the
order of interleaved ``print`` and ``sys.stderr.write`` calls survives. A frame is one type byte,
a 4-byte big-endian length and the payload. The reader treats every byte as hostile: a frame
that is too long or of unknown type ends parsing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

STDOUT = b"o"
STDERR = b"e"
RESULT = b"r"
KNOWN_TYPES = (STDOUT, STDERR, RESULT)
HEADER = struct.Struct(">cI")
MAX_TEXT_FRAME = 64 * 1024  # writers split text; only the result frame may be larger


def encode(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


@dataclass
class FrameReader:
    """Incremental, bounded parser of frames arriving in arbitrary chunks."""

    max_frame: int
    buffer: bytearray = field(default_factory=bytearray)
    corrupt: bool = False

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        if self.corrupt:
            return []
        self.buffer += data
        frames: list[tuple[bytes, bytes]] = []
        while len(self.buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self.buffer)
            if kind not in KNOWN_TYPES or length > self.max_frame:
                self.corrupt = True
                self.buffer.clear()
                break
            if len(self.buffer) < HEADER.size + length:
                break
            frames.append((kind, bytes(self.buffer[HEADER.size : HEADER.size + length])))
            del self.buffer[: HEADER.size + length]
        return frames
