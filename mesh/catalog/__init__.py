"""The model catalog (models.csv): entries, lifecycle rules and their `ModelInfo`.

Its own package in the shared layer: the router (listing, lifecycle, pricing) and the
embedding worker (Info) both read it, and neither imports the other.
  entries.py     parse models.csv, reload it when edited (Catalog, CatalogEntry)
  lifecycle.py   active / notice / retired on a day, and the headers that announce it
  model_info.py  entry -> ModelInfo, the one conversion everyone uses
"""

from mesh.catalog.entries import DEFAULT_PATH, Catalog, CatalogEntry, CatalogError
from mesh.catalog.lifecycle import (
    Lifecycle,
    evaluate,
    experimental_allowed,
    experimental_message,
    retired_message,
)

__all__ = [
    "DEFAULT_PATH",
    "Catalog",
    "CatalogEntry",
    "CatalogError",
    "Lifecycle",
    "evaluate",
    "experimental_allowed",
    "experimental_message",
    "retired_message",
]
