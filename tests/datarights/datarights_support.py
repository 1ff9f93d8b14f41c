"""Shared helpers for the data-rights tests: reading a downloaded ZIP and its CSV files, and the PDF text reader of
tests/clinic/test_documents.py. The tests use the matrix world (tests/matrix_support.py): clients X and Y with every
kind of record."""

from __future__ import annotations

import csv
import importlib.util
import io
import zipfile
from pathlib import Path
from typing import Any


def open_zip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def read_csv(data: bytes) -> list[dict[str, str]]:
    """Every row of a CSV file as a dict; fails on anything that is not well-formed UTF-8 CSV with a header."""
    text = data.decode("utf-8")
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    rows = list(reader)
    assert reader.fieldnames, "no header row"
    assert all(None not in row and None not in row.values() for row in rows), "a row has the wrong number of cells"
    return rows


def _load_pdf_reader() -> Any:
    """The PDF text reader written for the documents' tests (no PDF library is installed), loaded from its file."""
    path = Path(__file__).resolve().parent.parent / "clinic" / "test_documents.py"
    spec = importlib.util.spec_from_file_location("datarights_pdf_reader", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pdf_text


def pdf_text(data: bytes) -> str:
    return str(_load_pdf_reader()(data))
