from __future__ import annotations

import json

import numpy as np
import pytest

from workloads.training.data import DataError, load_dataset, split_indices
from workloads.training.synthetic import synthetic_csv

GOOD_ROWS = "".join(f"{i}.5,{i * 2},{i % 3}\n" for i in range(12))


def write(tmp_path, text: str | bytes, name: str = "data.csv"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def error_of(uri) -> str:
    with pytest.raises(DataError) as caught:
        load_dataset(str(uri))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_good_file_loads_with_names_classes_and_dtypes(tmp_path):
    dataset = load_dataset(str(write(tmp_path, "a,b,label\n" + GOOD_ROWS)))
    assert dataset.feature_names == ["a", "b"]
    assert dataset.classes == [0, 1, 2]
    assert dataset.rows == 12
    assert dataset.features.dtype == np.float32 and dataset.features.shape == (12, 2)
    assert dataset.labels.dtype == np.int64
    assert dataset.features[3].tolist() == [3.5, 6.0]


def test_the_label_column_may_be_anywhere_and_a_folder_uri_finds_data_csv(tmp_path):
    rows = "".join(f"{i % 2},{i}\n" for i in range(10))
    write(tmp_path, "label,x\n" + rows)
    dataset = load_dataset(str(tmp_path))
    assert dataset.feature_names == ["x"]
    assert dataset.labels.tolist() == [i % 2 for i in range(10)]


def test_a_manifest_concatenates_its_parts_in_order(tmp_path):
    text = synthetic_csv(40, seed=2)
    header, *rows = text.splitlines()
    write(tmp_path, "\n".join([header, *rows[:15]]) + "\n", "part-0.csv")
    write(tmp_path, "\n".join([header, *rows[15:]]) + "\n", "part-1.csv")
    write(tmp_path, json.dumps({"files": ["part-0.csv", "part-1.csv"]}), "_manifest.json")
    whole = load_dataset(str(write(tmp_path, text, "data-whole.csv")))
    for uri in (tmp_path / "_manifest.json", tmp_path):
        parts = load_dataset(str(uri))
        assert parts.rows == 40
        np.testing.assert_array_equal(parts.features, whole.features)
        np.testing.assert_array_equal(parts.labels, whole.labels)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "file is empty"),
        ("a,b,label\n", "file is empty (a header and no data rows)"),
        ("a,b,c\n" + GOOD_ROWS, "missing the 'label' column"),
        ("label\n" + "".join(f"{i % 2}\n" for i in range(12)), "no feature columns"),
        ("a,a,label\n" + GOOD_ROWS, "duplicate column(s) in the header: a"),
        ("a,b,label\n" + GOOD_ROWS + "1.0,abc,1\n", "line 14, column 'b': 'abc' is not a number"),
        ("a,b,label\n" + GOOD_ROWS + "1.0,,1\n", "line 14, column 'b': missing value"),
        ("a,b,label\n" + GOOD_ROWS + "nan,2,1\n", "line 14, column 'a': 'nan' is not a finite number"),
        ("a,b,label\n" + GOOD_ROWS + "inf,2,1\n", "line 14, column 'a': 'inf' is not a finite number"),
        ("a,b,label\n" + GOOD_ROWS + "1,2\n", "line 14 has 2 fields; the header has 3"),
        ("a,b,label\n" + GOOD_ROWS[: GOOD_ROWS.index("\n", 40) + 1], "data rows; at least 10 are required"),
        ("a,b,label\n" + GOOD_ROWS + "1,2,1.5\n", "'label' must be an integer class; data row 13 has 1.5"),
        ("a,b,label\n" + GOOD_ROWS + "1,2,-1\n", "'label' must be 0..K-1; data row 13 has -1"),
        (
            "a,b,label\n" + GOOD_ROWS + "1,2,5\n",
            "classes must be 0..K-1 with none missing; found 0, 1, 2, 5, missing 3, 4",
        ),
        ("a,b,label\n" + "".join(f"{i},{i},1\n" for i in range(12)), "a single class (1)"),
    ],
    ids=[
        "empty",
        "header-only",
        "missing-label",
        "no-features",
        "duplicate-column",
        "non-numeric",
        "missing-value",
        "nan",
        "inf",
        "ragged-row",
        "too-few-rows",
        "fractional-label",
        "negative-label",
        "gap-in-labels",
        "single-class",
    ],
)
def test_each_bad_input_gets_its_own_clear_one_line_error(tmp_path, content, expected):
    path = write(tmp_path, content)
    message = error_of(path)
    assert expected in message
    assert str(path) in message


def test_bytes_that_are_not_utf8_are_reported(tmp_path):
    assert "not UTF-8 text" in error_of(write(tmp_path, b"a,label\n\xff\xfe,1\n"))


def test_missing_file_and_folder_without_data(tmp_path):
    assert "no such dataset file" in error_of(tmp_path / "nope.csv")
    assert "no data.csv or _manifest.json in this folder" in error_of(tmp_path)


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"files": []}), 'expected {"files": ["part-0.csv", ...]}'),
        (json.dumps(["part-0.csv"]), 'expected {"files"'),
        (json.dumps({"files": ["../escape.csv"]}), "must be relative to the manifest's folder"),
        (json.dumps({"files": ["part-0.csv", "part-9.csv"]}), "listed file"),
    ],
)
def test_bad_manifests(tmp_path, manifest, expected):
    write(tmp_path, "a,b,label\n" + GOOD_ROWS, "part-0.csv")
    assert expected in error_of(write(tmp_path, manifest, "_manifest.json"))


def test_parts_with_different_headers_are_refused(tmp_path):
    write(tmp_path, "a,b,label\n" + GOOD_ROWS, "part-0.csv")
    write(tmp_path, "a,c,label\n" + GOOD_ROWS, "part-1.csv")
    write(tmp_path, json.dumps({"files": ["part-0.csv", "part-1.csv"]}), "_manifest.json")
    assert "header a,c,label differs" in error_of(tmp_path)


def test_the_size_limit_is_checked_before_reading(tmp_path, monkeypatch):
    from workloads.training import data

    monkeypatch.setattr(data, "MAX_BYTES", 100)
    assert "at most 100 bytes are allowed" in error_of(write(tmp_path, "a,b,label\n" + GOOD_ROWS))


def test_split_is_deterministic_disjoint_and_never_empty():
    train, val = split_indices(100, seed=3)
    again_train, again_val = split_indices(100, seed=3)
    assert train.tolist() == again_train.tolist() and val.tolist() == again_val.tolist()
    assert len(val) == 20 and not set(train) & set(val) and len(train) + len(val) == 100
    small_train, small_val = split_indices(2, seed=0)
    assert len(small_train) == 1 and len(small_val) == 1


def test_parsing_in_chunks_gives_the_same_table_and_the_same_line_numbers(monkeypatch):
    """A large file is parsed PARSE_CHUNK_BYTES of lines at a time (memory: one chunk, not the whole
    text); chunk boundaries change neither the table nor where an error is reported."""
    from workloads.training import data

    raw = synthetic_csv(rows=500, features=3, classes=2, seed=4).encode()
    _, whole = data.parse_csv(raw, name="d.csv")
    lines = raw.splitlines(keepends=True)
    oops = b"".join(lines[:401]) + b"1,2,oops,0\n" + b"".join(lines[401:])  # line 402 of the file
    monkeypatch.setattr(data, "PARSE_CHUNK_BYTES", 97)  # many chunks, boundaries mid-line
    _, chunked = data.parse_csv(raw, name="d.csv")
    assert np.array_equal(whole, chunked) and chunked.shape == (500, 4)
    with pytest.raises(DataError, match=r"d.csv: line 402, column '.*': 'oops' is not a number"):
        data.parse_csv(oops, name="d.csv")
    with pytest.raises(DataError, match=r"d.csv: line 3 has 5 fields"):
        data.parse_csv(raw.replace(b"\n", b"\nx,", 2).replace(b"\nx,", b"\n", 1), name="d.csv")
    with pytest.raises(DataError, match=r"not UTF-8 text \(invalid start byte at byte 1000\)"):
        data.parse_csv(raw[:1000] + b"\xff" + raw[1001:], name="d.csv")
