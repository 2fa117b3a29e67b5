"""`python -m training export-catalog`: the live catalog (the serving version's items with the
storefront's changes since, as CatalogService keeps them) written in the catalog format, so that the
next training starts from what the store sells now."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from models.recommend.artifact import RecommenderArtifact
from models.recommend.catalog import Catalog
from models.recommend.catalog_store import STATE_FILE, CatalogStore
from training import version_admin

COLUMNS = ["item_id", "title", "category", "brand", "price", "in_stock", "tags"]


def live_catalog(model_dir: Path, state_dir: Path) -> Catalog:
    name = version_admin.serving(version_admin.describe(model_dir))
    if not name:
        raise ValueError(f"{model_dir}: no promoted model version, so no catalog to start from")
    catalog = RecommenderArtifact.load(model_dir / name).catalog()
    store_file = state_dir / STATE_FILE
    if not store_file.exists():
        return catalog
    store = CatalogStore(store_file)
    try:
        _, changes = store.changes_since(-1)
    finally:
        store.close()
    return catalog.with_changes(changes)


def export(catalog: Catalog, out: Path) -> int:
    """Writes the items not deleted; returns how many."""
    out.parent.mkdir(parents=True, exist_ok=True)
    live = catalog.live()
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for i in range(catalog.size):
            if not live[i]:
                continue
            item = catalog.item(i)
            price = "" if math.isnan(item.price) else f"{item.price:g}"
            tags = "|".join(item.tags)
            writer.writerow([item.item_id, item.title, item.category, item.brand, price, item.in_stock, tags])
    return int(live.sum())
