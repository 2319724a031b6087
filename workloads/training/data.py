"""Loads and validates a training dataset (docs/contracts.md, "Datasets").

A dataset is a CSV with a header, numeric feature columns and an integer `label` column with
classes 0..K-1; either one `data.csv` or a `_manifest.json` listing part files. Every problem is
a `DataError` whose message is one line naming the file, the line and the column; a storage
failure that is not the data's fault (access denied, network) stays a `StorageError`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workloads.training.errors import DataError, ObjectNotFound
from workloads.training.storage import Storage, is_s3, join, parent

__all__ = ["DataError", "Dataset", "load_dataset", "split_indices"]

LABEL_COLUMN = "label"
MIN_ROWS = 10
MAX_ROWS = 5_000_000
MAX_BYTES = 2 * 1024 * 1024 * 1024  # 2 GiB: the control plane's MAX_DATASET_BYTES
MANIFEST_NAME = "_manifest.json"
SINGLE_FILE_NAME = "data.csv"
PARSE_CHUNK_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Dataset:
    features: np.ndarray  # [rows, features] float32
    labels: np.ndarray  # [rows] int64, values 0..K-1
    feature_names: list[str]
    classes: list[int]
    files: list[str]
    # A rank's shard (workloads/training/shards.py) holds rows first_row.. of total_rows; the
    # whole dataset is the shard of rank 0 of 1.
    first_row: int = 0
    total_rows: int = -1  # -1: these are all the rows

    @property
    def rows(self) -> int:
        """Rows held here (this shard's)."""
        return int(self.labels.shape[0])

    @property
    def dataset_rows(self) -> int:
        """Rows of the whole dataset."""
        return self.rows if self.total_rows < 0 else self.total_rows

    def owned(self, rows: np.ndarray) -> np.ndarray:
        """Of the whole dataset's row numbers `rows`, those held here, as local indices."""
        held = rows[(rows >= self.first_row) & (rows < self.first_row + self.rows)]
        return held - self.first_row


def check_size(uri: str, total_bytes: int) -> None:
    if total_bytes > MAX_BYTES:
        raise DataError(f"{uri}: dataset is {total_bytes} bytes; at most {MAX_BYTES} bytes are allowed")


def load_dataset(uri: str, storage: Storage | None = None) -> Dataset:
    """Reads `uri` (a .csv file, a _manifest.json, or a folder holding one of them) and validates it."""
    storage = storage or Storage()
    files = resolve_files(uri, storage)
    check_size(uri, sum(_size(storage, file) for file in files))
    header: list[str] | None = None
    tables: list[np.ndarray] = []
    for file in files:
        file_header, table = parse_csv(_read(storage, file), name=file)
        if header is None:
            header = file_header
        elif file_header != header:
            raise DataError(f"{file}: header {','.join(file_header)} differs from {files[0]}'s {','.join(header)}")
        tables.append(table)
    assert header is not None
    table = joined(tables, columns=len(header))
    return _to_dataset(table, header, files, uri)


def resolve_files(uri: str, storage: Storage) -> list[str]:
    if uri.endswith(MANIFEST_NAME):
        return _manifest_files(uri, storage)
    if uri.endswith(".csv"):
        if not storage.exists(uri):
            raise DataError(f"{uri}: no such dataset file")
        return [uri]
    manifest = join(uri, MANIFEST_NAME)
    if storage.exists(manifest):
        return _manifest_files(manifest, storage)
    single = join(uri, SINGLE_FILE_NAME)
    if storage.exists(single):
        return [single]
    kind = "prefix" if is_s3(uri) else "folder"
    raise DataError(f"{uri}: no {SINGLE_FILE_NAME} or {MANIFEST_NAME} in this {kind}")


def _manifest_files(manifest_uri: str, storage: Storage) -> list[str]:
    raw = _read(storage, manifest_uri)
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{manifest_uri}: not valid JSON ({exc})") from exc
    names = document.get("files") if isinstance(document, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise DataError(f'{manifest_uri}: expected {{"files": ["part-0.csv", ...]}} with at least one name')
    for name in names:
        if name.startswith("/") or ".." in name.split("/"):
            raise DataError(f"{manifest_uri}: file name {name!r} must be relative to the manifest's folder")
    base = parent(manifest_uri)
    files = [join(base, name) for name in names]
    for file in files:
        if not storage.exists(file):
            raise DataError(f"{manifest_uri}: listed file {file} does not exist")
    return files


def parse_csv(raw: bytes, *, name: str, line_offset: int = 0) -> tuple[list[str], np.ndarray]:
    """Returns (header, float64 table with one column per header name).

    `raw` is a header line and data lines; `line_offset` is how many of the file's lines come
    between the header and the first data line given (a shard of the file), for error messages."""
    header_end = raw.find(b"\n")
    header_end = len(raw) if header_end < 0 else header_end
    first_line = _decode(raw[:header_end], name, offset=0, encoding="utf-8-sig")
    if not first_line.strip():
        raise DataError(f"{name}: file is empty (expected a header line and data rows)")
    header = [column.strip() for column in next(csv.reader([first_line]))]
    _check_header(header, name)
    table = parse_rows(raw, header, name=name, start=header_end + 1, line_offset=line_offset)
    if not len(table):
        raise DataError(f"{name}: file is empty (a header and no data rows)")
    return header, table


def parse_rows(data: bytes, header: list[str], *, name: str, start: int = 0, line_offset: int = 0) -> np.ndarray:
    """The data lines of `data` from byte `start` as a float64 table, PARSE_CHUNK_BYTES of lines at a
    time: besides the bytes and the table, parsing holds one chunk (decoded, it is several times its
    size), never the whole text. `line_offset`: the file's data lines before `data`, for messages."""
    tables: list[np.ndarray] = []
    lines_before = line_offset
    while start < len(data):
        newline = data.find(b"\n", min(start + PARSE_CHUNK_BYTES, len(data)) - 1)
        end = len(data) if newline < 0 else newline + 1
        text = _decode(data[start:end], name, offset=start, encoding="utf-8")
        if text.strip():
            try:
                table = np.loadtxt(
                    io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2, comments=None, quotechar='"'
                )
            except ValueError:
                table = None
            if table is None or table.shape[1] != len(header) or not np.isfinite(table).all():
                # The fast parser's own messages number rows inconsistently: find the first bad cell here.
                raise DataError(_first_bad_cell(text, header, name, lines_before))
            tables.append(table)
        lines_before += text.count("\n")
        start = end
    return joined(tables, columns=len(header))


def joined(tables: list[np.ndarray], *, columns: int) -> np.ndarray:
    """The tables one below the other; one table is returned as it is (no copy of a large table)."""
    if len(tables) == 1:
        return tables[0]
    return np.concatenate(tables) if tables else np.empty((0, columns))


def _decode(raw: bytes, name: str, *, offset: int, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: not UTF-8 text ({exc.reason} at byte {offset + exc.start})") from exc


def _check_header(header: list[str], name: str) -> None:
    if any(not column for column in header):
        raise DataError(f"{name}: the header has an empty column name: {','.join(header)}")
    duplicates = sorted({column for column in header if header.count(column) > 1})
    if duplicates:
        raise DataError(f"{name}: duplicate column(s) in the header: {', '.join(duplicates)}")
    if LABEL_COLUMN not in header:
        raise DataError(f"{name}: missing the '{LABEL_COLUMN}' column (header: {','.join(header)})")
    if len(header) < 2:
        raise DataError(f"{name}: no feature columns besides '{LABEL_COLUMN}'")


def _first_bad_cell(text: str, header: list[str], name: str, line_offset: int = 0) -> str:
    """`text`: data lines, the first being the file's data line `line_offset` + 1 (line 1 is the header)."""
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        line = reader.line_num + 1 + line_offset
        if len(row) != len(header):
            return f"{name}: line {line} has {len(row)} fields; the header has {len(header)}"
        for column, cell in zip(header, row, strict=True):
            value = cell.strip()
            if not value:
                return f"{name}: line {line}, column '{column}': missing value"
            try:
                number = float(value)
            except ValueError:
                return f"{name}: line {line}, column '{column}': {value[:40]!r} is not a number"
            if not math.isfinite(number):
                return f"{name}: line {line}, column '{column}': {value!r} is not a finite number"
    return f"{name}: could not be parsed as a numeric CSV"


def _to_dataset(table: np.ndarray, header: list[str], files: list[str], uri: str) -> Dataset:
    rows = table.shape[0]
    if rows < MIN_ROWS:
        raise DataError(f"{uri}: {rows} data rows; at least {MIN_ROWS} are required")
    if rows > MAX_ROWS:
        raise DataError(f"{uri}: {rows} data rows; at most {MAX_ROWS} are allowed")
    label_index = header.index(LABEL_COLUMN)
    raw_labels = table[:, label_index]
    labels = _check_labels(raw_labels, uri)
    feature_names = [column for column in header if column != LABEL_COLUMN]
    features = np.delete(table, label_index, axis=1).astype(np.float32)
    if not np.isfinite(features).all():
        raise DataError(f"{uri}: a feature value overflows float32")
    classes = list(range(int(labels.max()) + 1))
    return Dataset(features=features, labels=labels, feature_names=feature_names, classes=classes, files=files)


def _check_labels(raw: np.ndarray, uri: str) -> np.ndarray:
    not_integer = np.flatnonzero(raw != np.round(raw))
    if not_integer.size:
        row = int(not_integer[0])
        raise DataError(f"{uri}: '{LABEL_COLUMN}' must be an integer class; data row {row + 1} has {raw[row]:g}")
    negative = np.flatnonzero(raw < 0)
    if negative.size:
        row = int(negative[0])
        raise DataError(f"{uri}: '{LABEL_COLUMN}' must be 0..K-1; data row {row + 1} has {raw[row]:g}")
    labels = raw.astype(np.int64)
    present = np.unique(labels)
    expected = np.arange(int(present.max()) + 1)
    if present.size < 2:
        raise DataError(f"{uri}: '{LABEL_COLUMN}' has a single class ({int(present[0])}); at least 2 are needed")
    if present.size != expected.size:
        missing = sorted(set(expected.tolist()) - set(present.tolist()))
        raise DataError(
            f"{uri}: '{LABEL_COLUMN}' classes must be 0..K-1 with none missing; "
            f"found {_brief(present.tolist())}, missing {_brief(missing)}"
        )
    return labels


def _brief(values: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def _read(storage: Storage, uri: str) -> bytes:
    try:
        return storage.read_bytes(uri)
    except ObjectNotFound as exc:  # deleted between listing and reading: still the dataset's fault
        raise DataError(str(exc)) from exc


def _size(storage: Storage, uri: str) -> int:
    try:
        return storage.size(uri)
    except ObjectNotFound as exc:
        raise DataError(str(exc)) from exc


def split_indices(rows: int, *, seed: int, validation_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic (train, validation) split of row indices; both parts are non-empty."""
    order = np.random.default_rng(seed).permutation(rows)
    validation = min(max(1, round(rows * validation_fraction)), rows - 1)
    return np.sort(order[validation:]), np.sort(order[:validation])
