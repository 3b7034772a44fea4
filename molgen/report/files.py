"""Reading the small JSON and CSV files that runs leave behind, with user
errors (a corrupted or unreadable file) turned into :class:`DataError`."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from molgen.core.errors import DataError


def read_json_file(path: Path) -> Any:
    """Parsed JSON, or a DataError naming the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path} as JSON: {exc}") from None


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file as strings, or a DataError naming the file."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path} as CSV: {exc}") from None
