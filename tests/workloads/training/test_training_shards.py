"""Each rank reads only its shard of the staged dataset; together the shards are the dataset."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from workloads.training.data import DataError, load_dataset
from workloads.training.shards import byte_ranges, parse_pieces, read_pieces
from workloads.training.storage import Storage
from workloads.training.synthetic import synthetic_csv


@dataclass
class CountingStorage(Storage):
    """The real local storage, counting the bytes each read returns."""

    read: int = 0
    whole_reads: list[str] = field(default_factory=list)

    def read_range(self, uri: str, start: int, end: int) -> bytes:
        data = super().read_range(uri, start, end)
        self.read += len(data)
        return data

    def read_bytes(self, uri: str) -> bytes:
        self.whole_reads.append(uri)
        return super().read_bytes(uri)


def shard(uri: str, rank: int, size: int, storage: Storage, lines_before: dict[int, int] | None = None):
    files, pieces = read_pieces(uri, storage, rank, size)
    return files, pieces, parse_pieces(files, pieces, lines_before or {})


def rows_of(table: np.ndarray) -> set[tuple[float, ...]]:
    return {tuple(row) for row in table.tolist()}


def test_two_ranks_read_disjoint_shards_that_together_are_the_dataset(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(synthetic_csv(5000, seed=4))
    whole = load_dataset(str(path))
    whole_table = np.column_stack([whole.features.astype(np.float64), whole.labels])

    tables, read = [], []
    for rank in (0, 1):
        storage = CountingStorage()
        _, _, table = shard(str(path), rank, 2, storage)
        tables.append(table)
        read.append(storage.read)
        assert storage.whole_reads == []  # ranged reads only: no rank reads the whole file

    features = [np.column_stack([t[:, :-1].astype(np.float32).astype(np.float64), t[:, -1]]) for t in tables]
    assert rows_of(features[0]).isdisjoint(rows_of(features[1]))
    # In order, rank 0's rows then rank 1's are exactly the file's rows: none lost, none twice.
    np.testing.assert_array_equal(np.concatenate(features), whole_table)
    assert abs(len(tables[0]) - len(tables[1])) <= 0.05 * whole.rows
    size = path.stat().st_size
    for bytes_read in read:  # half the file, plus a header probe and the end of its last line (4 KiB each)
        assert bytes_read < size / 2 + 2 * 4096


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_any_number_of_ranks_covers_a_manifest_dataset_once(tmp_path, size):
    text = synthetic_csv(300, seed=6)
    header, *rows = text.splitlines()
    (tmp_path / "part-0.csv").write_text("\n".join([header, *rows[:100]]) + "\n")
    (tmp_path / "part-1.csv").write_text("\n".join([header, *rows[100:]]))  # no final newline
    (tmp_path / "_manifest.json").write_text(json.dumps({"files": ["part-0.csv", "part-1.csv"]}))
    whole = load_dataset(str(tmp_path))

    tables = [shard(str(tmp_path), rank, size, Storage())[2] for rank in range(size)]
    labels = np.concatenate([t[:, -1] for t in tables])
    assert labels.tolist() == whole.labels.tolist()


def test_byte_ranges_split_the_data_bytes_evenly_across_files():
    from workloads.training.shards import FileBody

    files = [FileBody("a", b"x,label\n", 108), FileBody("b", b"x,label\n", 58)]  # 100 + 50 data bytes
    ranges = [byte_ranges(files, rank, 3) for rank in range(3)]
    assert [[(r.file, r.start, r.end) for r in rs] for rs in ranges] == [
        [(0, 8, 58)],
        [(0, 58, 108)],
        [(1, 8, 58)],
    ]


def test_a_bad_cell_in_the_second_shard_names_its_line_in_the_file(tmp_path):
    lines = [f"{i}.5,{i % 3}" for i in range(40)]
    lines[30] = "oops,1"
    path = tmp_path / "data.csv"
    path.write_text("x,label\n" + "\n".join(lines) + "\n")
    _, first, _ = shard(str(path), 0, 2, Storage())
    before = {piece.file: piece.lines for piece in first}
    with pytest.raises(DataError, match=r"line 32, column 'x': 'oops' is not a number"):
        shard(str(path), 1, 2, Storage(), before)
