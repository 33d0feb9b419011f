"""Read the records of an offline W&B run file (``run-<id>.wandb``) without a network.

The file is W&B's record log: a 7-byte header (``:W&B``, magic, version), then
32 KiB blocks of chunks, each ``crc32 (4) | length (2) | type (1) | data``,
type 1 a whole record, 2/3/4 its first/middle/last piece; a block's last
< 7 bytes are padding. Each record is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7


def read_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    raw = Path(path).read_bytes()
    assert raw[:4] == b":W&B", raw[:7]
    pos, piece, records = HEADER, b"", []
    while pos + HEADER <= len(raw):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _, n, kind = struct.unpack("<IHB", raw[pos : pos + HEADER])
        pos += HEADER
        if n == 0 and kind == 0:
            break
        piece += raw[pos : pos + n]
        pos += n
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(piece)
            records.append(record)
            piece = b""
    return records


def history_rows(path: Path) -> list[dict]:
    """The logged rows, ``{key: value}`` with W&B's own ``_step`` etc."""
    rows = []
    for r in read_records(path):
        if r.WhichOneof("record_type") == "history":
            rows.append(
                {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            )
    return rows


def run_record(path: Path):
    """The run record: id, project, group, tags and the config uploaded at init."""
    for r in read_records(path):
        if r.WhichOneof("record_type") == "run":
            config = {u.key: json.loads(u.value_json) for u in r.run.config.update}
            return r.run, config
    raise AssertionError(f"no run record in {path}")


def summary(path: Path) -> dict:
    out: dict = {}
    for r in read_records(path):
        if r.WhichOneof("record_type") == "summary":
            for u in r.summary.update:
                out[u.key or "/".join(u.nested_key)] = json.loads(u.value_json)
    return out
