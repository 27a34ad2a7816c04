"""The dataset columns of the summary table, in the order the table and its charts share."""
from __future__ import annotations


def dataset_columns(rows: list[dict], sources: set[str] = frozenset()) -> list[str]:
    """The datasets of ``rows`` in table order: sources first, then the others, then the average."""
    datasets = sorted({r["dataset"] for r in rows} - {"average"}, key=lambda d: (d not in sources, d))
    return datasets + (["average"] if any(r["dataset"] == "average" for r in rows) else [])


def column_label(dataset: str, sources: set[str], sep: str = " ") -> str:
    """A column's heading: the dataset, marked when it is a cross-dataset source."""
    return f"{dataset}{sep}(source)" if dataset in sources else dataset
