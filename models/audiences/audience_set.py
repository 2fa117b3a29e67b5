"""A published audience set (training/audiences.py writes it): tags.parquet read into sorted arrays, so
that a user's tags and a page of a tag's members are found by binary search, without locks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from models import versions

FORMAT = "shifu-audiences-1"
TAGS_FILE = "tags.parquet"
REPORT_FILE = "audiences.html"
COLUMNS = ["user_id", "tag", "category", "since", "suggested_item_ids"]


@dataclass(frozen=True)
class Membership:
    user_id: str
    tag: str
    category: str  # "" when the tag has none
    since_seconds: float  # Unix seconds, UTC
    suggested_item_ids: tuple[str, ...]


class AudienceSet:
    """Immutable once built."""

    def __init__(self, version: str, tags_path: Path, tag_names: list[str]) -> None:
        """`tag_names`: every tag of the rules, those without members too."""
        table = pq.read_table(tags_path, columns=COLUMNS)
        self.version = version
        self._users = np.asarray(table["user_id"].to_pylist(), dtype=object)
        self._tags = np.asarray(table["tag"].to_pylist(), dtype=object)
        self._categories = np.asarray([c or "" for c in table["category"].to_pylist()], dtype=object)
        since = table["since"].cast("int64").to_numpy(zero_copy_only=False)
        self._since = since.astype(np.float64) / 1e6  # microseconds
        self._suggested = table["suggested_item_ids"].to_pylist()
        # Two orders of the rows: by (user, tag, category) for a user's tags, by (tag, user, category)
        # for a tag's members (page tokens are the last user id given).
        self._by_user = np.lexsort((self._categories, self._tags, self._users))
        self._by_tag = np.lexsort((self._categories, self._users, self._tags))
        self._user_keys = self._users[self._by_user].astype(str)
        self._tag_keys = self._tags[self._by_tag].astype(str)
        self.tag_names = sorted(set(tag_names) | set(self._tag_keys.tolist()))

    def __len__(self) -> int:
        return len(self._users)

    def _row(self, i: int) -> Membership:
        suggested = self._suggested[i] or []
        return Membership(
            str(self._users[i]),
            str(self._tags[i]),
            str(self._categories[i]),
            float(self._since[i]),
            tuple(suggested),
        )

    def of_user(self, user_id: str) -> list[Membership]:
        start = np.searchsorted(self._user_keys, user_id, "left")
        end = np.searchsorted(self._user_keys, user_id, "right")
        return [self._row(int(i)) for i in self._by_user[start:end]]

    def members(
        self, tag: str, category: str, after_user: str, size: int
    ) -> tuple[list[Membership], int, bool]:
        """Up to `size` members of `tag` (of `category` unless ""), by user id after `after_user`, how
        many members there are in all, and whether more follow."""
        start = np.searchsorted(self._tag_keys, tag, "left")
        end = np.searchsorted(self._tag_keys, tag, "right")
        rows = self._by_tag[start:end]
        if category:
            rows = rows[self._categories[rows] == category]
        users = self._users[rows].astype(str)
        first = np.searchsorted(users, after_user, "right") if after_user else 0
        page = [self._row(int(i)) for i in rows[first : first + size]]
        return page, len(rows), bool(first + size < len(rows))


def load(version_dir: Path) -> AudienceSet:
    """A verified version (checksums and format); VersionError otherwise."""
    manifest = versions.read_manifest(version_dir, verify=True, expected_format=FORMAT)
    try:
        return AudienceSet(version_dir.name, version_dir / TAGS_FILE, list(manifest.get("rules", [])))
    except (OSError, ValueError, KeyError) as error:
        raise versions.VersionError(f"{version_dir}: unreadable {TAGS_FILE}: {error}") from error
