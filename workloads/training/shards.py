"""Each rank reads only its own shard of the dataset (the staged copy on EFS, or S3).

The dataset's data lines (every file's lines after its header, files in order) are cut into
`size` contiguous byte ranges of equal length, one per rank. A line belongs to the range its
first byte lies in (as Hadoop's input splits do): a rank reads its range, the rest of its last
line, and each file's header line. No rank holds, reads or receives the whole dataset; together
the ranks read every data line exactly once.

Rows keep the whole dataset's numbering (rank 0's rows first, then rank 1's, ...), so the
train/validation split and every error message (file, line, column; data row) are the ones a
single reader of the whole dataset gives. Validation needs the other ranks' counts and classes:
three small `allgather_object` rounds. A rank that fails (bad data, unreadable file) does not
leave the others waiting: each round carries failures, and every rank raises the first one.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads.training.data import (
    LABEL_COLUMN,
    MAX_ROWS,
    MIN_ROWS,
    Dataset,
    _brief,
    _check_header,
    _size,
    check_size,
    joined,
    parse_rows,
    resolve_files,
)
from workloads.training.errors import DataError, ObjectNotFound, StorageError
from workloads.training.storage import Storage

__all__ = ["ByteRange", "FileBody", "Piece", "byte_ranges", "load_shard", "read_pieces"]

HEADER_PROBE = 4096
READ_AHEAD = 4096


@dataclass(frozen=True)
class FileBody:
    """One file of the dataset: where its data lines start (after the header) and its size."""

    uri: str
    header: bytes  # the header line with its newline
    size: int

    @property
    def body_start(self) -> int:
        return len(self.header)


@dataclass(frozen=True)
class ByteRange:
    """Bytes [start, end) of one file that a rank owns (lines starting there are its)."""

    file: int  # index into the dataset's files
    start: int
    end: int


@dataclass(frozen=True)
class Piece:
    """Whole data lines a rank read from one file."""

    file: int
    data: bytes

    @property
    def lines(self) -> int:
        return self.data.count(b"\n") + (1 if self.data and not self.data.endswith(b"\n") else 0)


def byte_ranges(files: Sequence[FileBody], rank: int, size: int) -> list[ByteRange]:
    """Rank `rank`'s share of the data bytes: 1/size of their total, contiguous, in file order."""
    total = sum(f.size - f.body_start for f in files)
    low, high = total * rank // size, total * (rank + 1) // size
    ranges = []
    offset = 0
    for index, file in enumerate(files):
        length = file.size - file.body_start
        start, end = max(low, offset), min(high, offset + length)
        if start < end:
            ranges.append(ByteRange(index, file.body_start + start - offset, file.body_start + end - offset))
        offset += length
    return ranges


def read_lines(storage: Storage, file: FileBody, owned: ByteRange) -> bytes:
    """The data lines whose first byte lies in `owned`, read with ranged reads only."""
    first = owned.start - 1 if owned.start > file.body_start else owned.start
    data = storage.read_range(file.uri, first, owned.end)
    if first < owned.start:  # the line running into the range is the previous range's
        newline = data.find(b"\n")
        if newline < 0:
            return b""  # the range lies inside one line that started before it
        data = data[newline + 1 :]
    position = owned.end
    while data and not data.endswith(b"\n") and position < file.size:  # finish the last line
        more = storage.read_range(file.uri, position, min(position + READ_AHEAD, file.size))
        newline = more.find(b"\n")
        data += more if newline < 0 else more[: newline + 1]
        if newline >= 0:
            break
        position += len(more)
    return data


def read_header(storage: Storage, uri: str, size: int) -> bytes:
    """The file's first line, newline included (the whole file when it has no newline)."""
    header = b""
    while len(header) < size:
        chunk = storage.read_range(uri, len(header), min(len(header) + HEADER_PROBE, size))
        newline = chunk.find(b"\n")
        if newline >= 0:
            return header + chunk[: newline + 1]
        header += chunk
    return header


def dataset_files(uri: str, storage: Storage) -> list[FileBody]:
    """The dataset's files, each with its header line; the checks every rank makes alike."""
    uris = resolve_files(uri, storage)
    sizes = [_size(storage, file) for file in uris]
    check_size(uri, sum(sizes))
    files = [FileBody(file, read_header(storage, file, size), size) for file, size in zip(uris, sizes, strict=True)]
    first_header: list[str] | None = None
    for file in files:
        header = _header_columns(file)
        if first_header is None:
            first_header = header
        elif header != first_header:
            raise DataError(
                f"{file.uri}: header {','.join(header)} differs from {files[0].uri}'s {','.join(first_header)}"
            )
    return files


def read_pieces(uri: str, storage: Storage, rank: int, size: int) -> tuple[list[FileBody], list[Piece]]:
    """This rank's data lines, per file, and the dataset's files (step one of `load_shard`)."""
    files = dataset_files(uri, storage)
    pieces = [Piece(r.file, _read(storage, files[r.file], r)) for r in byte_ranges(files, rank, size)]
    return files, [piece for piece in pieces if piece.data]


def parse_pieces(files: Sequence[FileBody], pieces: Sequence[Piece], lines_before: dict[int, int]) -> np.ndarray:
    """The pieces as one float64 table; `lines_before[file]`: that file's data lines read by lower ranks."""
    header = _header_columns(files[0])
    tables = [
        parse_rows(piece.data, header, name=files[piece.file].uri, line_offset=lines_before.get(piece.file, 0))
        for piece in pieces
    ]
    return joined(tables, columns=len(header))


def load_shard(uri: str, hvd: Any, storage: Storage | None = None) -> Dataset:
    """This rank's rows of the dataset at `uri`, validated as the whole dataset would be.

    `hvd` is `horovod.torch` (rank, size, allgather_object); every rank calls this together."""
    storage = storage or Storage()
    rank, size = hvd.rank(), hvd.size()
    mine: dict[str, Any] = {}

    def read() -> dict[int, int]:
        mine["files"], mine["pieces"] = read_pieces(uri, storage, rank, size)
        return {piece.file: piece.lines for piece in mine["pieces"]}

    lines = _together(hvd, "shard.lines", read)
    files, pieces = mine["files"], mine["pieces"]
    lines_before = {f: sum(counts.get(f, 0) for counts in lines[:rank]) for f in range(len(files))}
    rows = _together(hvd, "shard.rows", lambda: _parse(mine, files, pieces, lines_before))
    first_row, total_rows = sum(rows[:rank]), sum(rows)
    if total_rows < MIN_ROWS:
        raise DataError(f"{uri}: {total_rows} data rows; at least {MIN_ROWS} are required")
    if total_rows > MAX_ROWS:
        raise DataError(f"{uri}: {total_rows} data rows; at most {MAX_ROWS} are allowed")

    header = _header_columns(files[0])
    label_index = header.index(LABEL_COLUMN)
    table: np.ndarray = mine["table"]
    present = _together(hvd, "shard.labels", lambda: _local_labels(uri, table[:, label_index], first_row))
    labels = table[:, label_index].astype(np.int64)
    classes = _check_classes(uri, sorted(set().union(*present)))
    features = np.delete(table, label_index, axis=1).astype(np.float32)
    return Dataset(
        features=features,
        labels=labels,
        feature_names=[column for column in header if column != LABEL_COLUMN],
        classes=classes,
        files=[file.uri for file in files],
        first_row=first_row,
        total_rows=total_rows,
    )


def _parse(mine: dict[str, Any], files: Sequence[FileBody], pieces: Sequence[Piece], before: dict[int, int]) -> int:
    mine["table"] = parse_pieces(files, pieces, before)
    if not np.isfinite(mine["table"].astype(np.float32)).all():
        raise DataError(f"{files[0].uri}: a feature value overflows float32")
    return int(mine["table"].shape[0])


def _local_labels(uri: str, raw: np.ndarray, first_row: int) -> set[int]:
    """The classes in this rank's rows; DataError for a label that is not an integer 0..K-1."""
    not_integer = np.flatnonzero(raw != np.round(raw))
    if not_integer.size:
        row = int(not_integer[0])
        raise DataError(
            f"{uri}: '{LABEL_COLUMN}' must be an integer class; data row {first_row + row + 1} has {raw[row]:g}"
        )
    negative = np.flatnonzero(raw < 0)
    if negative.size:
        row = int(negative[0])
        raise DataError(f"{uri}: '{LABEL_COLUMN}' must be 0..K-1; data row {first_row + row + 1} has {raw[row]:g}")
    return {int(label) for label in np.unique(raw)}


def _check_classes(uri: str, present: list[int]) -> list[int]:
    if len(present) < 2:
        raise DataError(f"{uri}: '{LABEL_COLUMN}' has a single class ({present[0]}); at least 2 are needed")
    expected = list(range(present[-1] + 1))
    if present != expected:
        missing = sorted(set(expected) - set(present))
        raise DataError(
            f"{uri}: '{LABEL_COLUMN}' classes must be 0..K-1 with none missing; "
            f"found {_brief(present)}, missing {_brief(missing)}"
        )
    return expected


def _together(hvd: Any, name: str, compute: Callable[[], Any]) -> list[Any]:
    """`compute` on every rank, the results gathered in rank order; when any rank failed, every
    rank raises the first failure (so none waits for a rank that gave up)."""
    try:
        mine: tuple[str, Any] = ("ok", compute())
    except DataError as exc:
        mine = ("data", str(exc))
    except StorageError as exc:
        mine = ("storage", str(exc))
    gathered = hvd.allgather_object(mine, name=name)
    for kind, value in gathered:
        if kind == "data":
            raise DataError(value)
        if kind == "storage":
            raise StorageError(value)
    return [value for _, value in gathered]


def _header_columns(file: FileBody) -> list[str]:
    try:
        text = file.header.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{file.uri}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not text.strip():
        raise DataError(f"{file.uri}: file is empty (expected a header line and data rows)")
    header = [column.strip() for column in next(csv.reader([text.rstrip("\r\n")]))]
    _check_header(header, file.uri)
    return header


def _read(storage: Storage, file: FileBody, owned: ByteRange) -> bytes:
    try:
        return read_lines(storage, file, owned)
    except ObjectNotFound as exc:  # deleted while the job read it: still the dataset's fault
        raise DataError(str(exc)) from exc
