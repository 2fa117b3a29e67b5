"""Answering recommendation queries: the person, scene and touchpoint become a query context, the
blended models score the catalog, business rules filter it, and each item gets a reason."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.recommend import content, places
from models.recommend.artifact import RecommenderArtifact
from models.recommend.catalog import Catalog
from models.recommend.component import Component, QueryContext, Reason, ReasonCode
from models.recommend.components import FALLBACK
from models.recommend.relations import ItemRelations, Relation
from models.recommend.scoring import NOVELTY, Scorer, Term
from models.recommend.touchpoints import TouchpointRule, TouchpointRules

__all__ = [
    "ItemFilter",
    "ModelDescription",
    "Query",
    "Reason",
    "ReasonCode",
    "Recommender",
    "Relation",
    "RequestWarning",
    "ScoredItem",
    "UnknownItemError",
    "WarningCode",
]

DEFAULT_LIMIT = 10  # items per answer when the request does not say
# How many items of a user's history (the most weighted) are searched for an explanation.
EXPLAIN_HISTORY = 50
# Among item-to-item similarities, each later one only breaks the ties of the one before.
TIE_BREAK = 1e-3
# Large catalogs (models/recommend/retrieval.py): candidates asked of the graph per query (it searches and
# returns retrieval.SEARCH_BREADTH times as many), besides the heads. On 200,000 items (benchmarks/catalog.py)
# a 10-item answer from 200, 100 or 64 was the full pass's for every query; p99 in process 3.3, 2.2, 1.8 ms.
RETRIEVED_MIN = 64
RETRIEVED_PER_PLACE = 4
# The session's newest items whose complements an answer keeps places for (each costs a pass over the
# catalog's arrays).
SESSION_ANCHORS = 2


class UnknownItemError(KeyError):
    """SimilarItems was asked about an item the model does not know."""


class WarningCode(enum.Enum):
    UNKNOWN_SCENE = "unknown_scene"
    UNKNOWN_TOUCHPOINT = "unknown_touchpoint"
    UNKNOWN_CATEGORY = "unknown_category"
    UNKNOWN_ITEM = "unknown_item"
    UNKNOWN_USER = "unknown_user"
    UNKNOWN_CONTEXT = "unknown_context"


@dataclass(frozen=True)
class RequestWarning:
    """A value in the request the model does not know; the answer is given without it."""

    code: WarningCode
    field: str
    value: str


@dataclass(frozen=True)
class ModelDescription:
    version: str
    scenes: list[str]
    touchpoints: list[str]
    categories: list[str]
    item_count: int
    user_count: int
    components: list[str]
    k: int
    holdout: dict[str, dict[str, float]]  # model -> metric -> value, from the training job
    event_types: list[str]  # the event types the training job weighed


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class ItemFilter:
    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    min_price: float | None = None
    max_price: float | None = None
    in_stock_only: bool = True


@dataclass(frozen=True)
class Query:
    user_id: str = ""
    scene: str = ""
    touchpoint: str = ""
    limit: int = DEFAULT_LIMIT
    exclude_item_ids: tuple[str, ...] = ()
    recent_item_ids: tuple[str, ...] = ()
    context: dict[str, str] = field(default_factory=dict)
    filter: ItemFilter = field(default_factory=ItemFilter)


class Recommender:
    """Immutable once built, so one instance serves concurrent requests without locks."""

    def __init__(
        self,
        artifact: RecommenderArtifact,
        version: str,
        rules: TouchpointRules | None = None,
        manifest: Mapping[str, Any] | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        """`catalog`: the live catalog (the version's items with the storefront's changes since); by
        default the version's own."""
        self.version = version
        self._manifest = dict(manifest or {})
        # The event types training weighed (its --event-weight): the events the service may record.
        self.event_types = tuple(
            self._manifest.get("parameters", {}).get("model", {}).get("event_weights", {})
        )
        self.scorer = Scorer(artifact)
        self.rules = rules or TouchpointRules()
        self._a = artifact
        self.catalog = catalog or artifact.catalog()
        c = self.catalog
        self._ids = c.ids.tolist()
        self._titles = c.titles.tolist()
        self._item_index = {item: i for i, item in enumerate(self._ids)}
        self._user_index = {user: u for u, user in enumerate(artifact.user_ids.tolist())}
        self._fallback = artifact.components[FALLBACK]
        self._similarity = sorted(
            (c for c in artifact.components.values() if type(c).similar is not Component.similar),
            key=lambda c: c.similarity_precedence,
        )
        ordered = sp.csr_matrix(
            (artifact.history_ordered, artifact.history_indices, artifact.history_indptr),
            shape=(len(artifact.user_ids), c.size),
        )
        features = content.catalog_features(c.categories, c.brands, c.prices, c.tags)
        self._relations = ItemRelations(c.categories, c.brands, features, ordered)
        # Items added since training: their content features, for the models that can place them.
        self._new_features = features[c.n_trained :]
        self._new_categories = c.categories[c.n_trained :]
        names, self._trained_category_codes = np.unique(c.categories[: c.n_trained], return_inverse=True)
        self._category_sizes = np.bincount(self._trained_category_codes, minlength=names.size).astype(float)
        at = np.minimum(np.searchsorted(names, self._new_categories), max(names.size - 1, 0))
        known = names.size > 0 and names[at] == self._new_categories
        self._new_category_codes = np.where(known, at, -1)
        # Masks of the category sets the touchpoint rules name, made once: the sets a client sends are
        # computed per call, so no client can grow this.
        self._category_masks = {
            categories: np.isin(c.categories, list(categories))
            for rule in (self.rules.default, *self.rules.touchpoints.values())
            for categories in (rule.categories, rule.exclude_categories, rule.repeatable_categories)
        }

        vocabulary: dict[str, set[str]] = {}
        for component in artifact.components.values():
            for kind, values in component.vocabulary().items():
                vocabulary.setdefault(kind, set()).update(values)
        rule_scenes = {r.default_scene for r in self._rules_all() if r.default_scene}
        self._scenes = vocabulary.get("scene", set()) | rule_scenes
        self._touchpoints = vocabulary.get("touchpoint", set()) | set(self.rules.touchpoints)
        # Every value the models know, by its case-folded spelling: a request's "Shanghai" is shanghai.
        self._spellings = {
            kind: {value.casefold(): value for value in values}
            for kind, values in (
                *vocabulary.items(),
                ("scene", self._scenes),
                ("touchpoint", self._touchpoints),
            )
        }
        self._categories = set(c.categories[c.live()].tolist())
        self._live = c.live()  # every query's mask starts from one of these
        self._live_in_stock = self._live & c.in_stock

    def with_catalog(self, catalog: Catalog) -> Recommender:
        """The same models over another live catalog."""
        return Recommender(self._a, self.version, self.rules, self._manifest, catalog)

    def _rules_all(self) -> list[TouchpointRule]:
        return [self.rules.default, *self.rules.touchpoints.values()]

    @property
    def n_items(self) -> int:
        return len(self._ids)

    def item_id(self, index: int) -> str:
        return self._ids[index]

    def index(self, item_id: str) -> int:
        return self._item_index[item_id]

    def find(self, item_id: str) -> int | None:
        return self._item_index.get(item_id)

    def _spelled(self, kind: str, value: str) -> str | None:
        """The known spelling of a value, ignoring case; None when the models do not know it."""
        return self._spellings.get(kind, {}).get(value.casefold())

    def canonical(self, query: Query) -> Query:
        """The query with its scene, touchpoint and context values spelled as the models know them."""
        context = {key: self._spelled(key, value) or value for key, value in query.context.items()}
        return replace(
            query,
            scene=self._spelled("scene", query.scene) or query.scene,
            touchpoint=self._spelled("touchpoint", query.touchpoint) or query.touchpoint,
            context=context,
        )

    def warnings(self, query: Query) -> list[RequestWarning]:
        """What in the query the model does not know, ignoring case (the answer is given without it)."""
        found = []
        if query.user_id and query.user_id not in self._user_index:
            found.append(RequestWarning(WarningCode.UNKNOWN_USER, "user_id", query.user_id))
        if query.scene and self._spelled("scene", query.scene) is None:
            found.append(RequestWarning(WarningCode.UNKNOWN_SCENE, "scene", query.scene))
        if query.touchpoint and self._spelled("touchpoint", query.touchpoint) is None:
            found.append(RequestWarning(WarningCode.UNKNOWN_TOUCHPOINT, "touchpoint", query.touchpoint))
        for key, value in sorted(query.context.items()):
            if key not in self._spellings:
                found.append(RequestWarning(WarningCode.UNKNOWN_CONTEXT, "context", key))
            elif self._spelled(key, value) is None:
                found.append(RequestWarning(WarningCode.UNKNOWN_CONTEXT, f"context[{key}]", value))
        return found + self.filter_warnings(query.filter, query.exclude_item_ids, query.recent_item_ids)

    def filter_warnings(
        self, item_filter: ItemFilter, exclude: tuple[str, ...], recent: tuple[str, ...] = ()
    ) -> list[RequestWarning]:
        found = []
        for name, categories in (
            ("filter.include_categories", item_filter.include_categories),
            ("filter.exclude_categories", item_filter.exclude_categories),
        ):
            found += [
                RequestWarning(WarningCode.UNKNOWN_CATEGORY, name, c)
                for c in sorted(categories)
                if c not in self._categories
            ]
        for name, ids in (("recent_item_ids", recent), ("exclude_item_ids", exclude)):
            found += [
                RequestWarning(WarningCode.UNKNOWN_ITEM, f"{name}[{i}]", item)
                for i, item in enumerate(ids)
                if item not in self._item_index
            ]
        return found

    def describe(self) -> ModelDescription:
        metrics = self._manifest.get("metrics", {})
        return ModelDescription(
            version=self.version,
            scenes=sorted(self._scenes),
            touchpoints=sorted(self._touchpoints),
            categories=sorted(self._categories),
            item_count=int(self.catalog.live().sum()),
            user_count=len(self._user_index),
            components=list(self._a.components),
            k=int(self._manifest.get("parameters", {}).get("k", DEFAULT_LIMIT)),
            holdout={name: dict(result["overall"]) for name, result in metrics.items()},
            event_types=list(self.event_types),
        )

    def context(self, query: Query, rule: TouchpointRule) -> QueryContext:
        """The query context of a request: user, history, session, scene, touchpoint, city, context."""
        user = self._user_index.get(query.user_id)
        history, weight, _ = self.scorer.history(user)
        session = self._indices(query.recent_item_ids)
        session = session[session < self.catalog.n_trained]  # the models know the version's items only
        if session.size and history.size:
            session = session[~np.isin(session, history)]
        city = query.context.get("city") or (str(self._a.user_cities[user]) if user is not None else "")
        return QueryContext(
            user=user,
            history=history,
            history_weight=weight,
            session=session,
            session_weight=float(self._a.session_confidence),
            scene=query.scene or rule.default_scene,
            touchpoint=query.touchpoint,
            city=city,
            attributes=query.context,
        )

    def recommend(self, query: Query) -> list[ScoredItem]:
        query = self.canonical(query)
        rule = self.rules.for_touchpoint(query.touchpoint)
        ctx = self.context(query, rule)
        mask = self._allowed(query.filter, query.exclude_item_ids + query.recent_item_ids, rule)
        _, _, ordered = self.scorer.history(ctx.user)
        once_only = ordered & ~self._in_categories(rule.repeatable_categories)[ctx.history]
        mask[ctx.history[once_only]] = False
        items, scores, terms = self._scores(ctx, mask, query.limit)
        n_trained = self.catalog.n_trained
        new_items = np.flatnonzero(mask[n_trained:]) + n_trained
        new_scores = np.empty(0, dtype=np.float32)
        if new_items.size:
            new_scores = self._new_item_scores(ctx, terms)[new_items - n_trained]
        top = _top(
            np.concatenate([items, new_items]),
            np.concatenate([scores, new_scores]),
            query.limit,
            self.catalog.categories,
            rule.max_per_category,
        )
        is_new = n_trained.__le__
        scored = zip(new_items.tolist(), new_scores.tolist(), strict=True)
        new_ranked = sorted(scored, key=lambda entry: (-entry[1], entry[0]))
        top = places.keep(top, new_ranked, rule.new_items_per_page, is_new)
        complements = self._session_complements(ctx, mask, min(rule.complements_per_page, query.limit // 3))
        if complements:
            ranked = list(zip(complements, self._blended(np.array(list(complements)), terms), strict=True))
            top = places.keep(top, ranked, len(complements), complements.__contains__, is_new)
        items = np.array([i for i, _ in top], dtype=np.int64)
        reasons = self._explain(items, ctx, terms)
        for n, item in enumerate(items.tolist()):
            if item in complements:
                reasons[n] = (self._complement_reason(complements[item], item), *reasons[n][1:])
        return [ScoredItem(self._ids[i], s, r) for (i, s), r in zip(top, reasons, strict=True)]

    def _session_complements(self, ctx: QueryContext, mask: np.ndarray, count: int) -> dict[int, int]:
        """Up to `count` items that go with the session's newest items, allowed by `mask` (one kind of
        complement at a time, each session item in turn): item -> the session item it goes with."""
        if count <= 0 or not ctx.session.size:
            return {}
        anchors = ctx.session[::-1][:SESSION_ANCHORS].tolist()
        per_anchor = []
        for anchor in anchors:
            items, _ = self._relations.goes_with(anchor, ctx.city)
            items = items[mask[items] & (items < self.catalog.n_trained)]
            _, first = np.unique(self.catalog.categories[items], return_index=True)
            per_anchor.append(items[np.sort(first)].tolist())  # each kind's best, in the order of the best
        picked = places.round_robin(per_anchor, count)
        return {
            item: next(a for a, items in zip(anchors, per_anchor, strict=True) if item in items)
            for item in picked
        }

    def _blended(self, items: np.ndarray, terms: dict[str, Term]) -> list[float]:
        """The blend's score of some of the version's items."""
        total = np.zeros(items.size, dtype=np.float32)
        for term in terms.values():
            total += term.at(items)
        return total.tolist()

    def _scores(
        self, ctx: QueryContext, mask: np.ndarray, limit: int
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Term]]:
        """(the version's items to choose from, their blended scores, the blend's terms): the allowed
        items. A large catalog scores only its retrieved candidates that are allowed (over-fetched so that
        filters and per-category caps still fill the answer; no array the size of the catalog is made),
        unless fewer than `limit` of them are: then the whole catalog."""
        retrieved = self.scorer.retrieve(ctx, max(RETRIEVED_MIN, RETRIEVED_PER_PLACE * limit))
        if retrieved is not None:
            candidates, terms = retrieved
            chosen = candidates[mask[candidates]]
            if chosen.size >= limit:
                scores = np.zeros(chosen.size, dtype=np.float32)
                for term in terms.values():
                    scores += term.at(chosen)
                return chosen, scores, terms
        scores, terms = self.scorer.blend(ctx)
        allowed = np.flatnonzero(mask[: self.catalog.n_trained])
        return allowed, scores[allowed], terms

    def similar(
        self,
        item_id: str,
        limit: int,
        item_filter: ItemFilter,
        exclude: tuple[str, ...],
        relation: Relation = Relation.SIMILAR,
    ) -> list[ScoredItem]:
        """Substitutes (SIMILAR: the same kind first, by content and co-view) or complements
        (COMPLEMENTARY: other kinds, by co-purchase) of an item."""
        anchor = self._item_index.get(item_id)
        if anchor is None:
            raise UnknownItemError(item_id)
        mask = self._allowed(item_filter, exclude, self.rules.default)
        mask[anchor] = False
        if relation is Relation.SIMILAR:
            scores = self._relations.substitutes(anchor, self.collaborative_similarity(anchor))
            allowed = np.flatnonzero(mask)
            top = _top(allowed, scores[allowed], limit, self.catalog.categories, 0)
            reason = Reason(ReasonCode.SIMILAR_ITEM, f"Similar to '{self._titles[anchor]}'", item_id)
            return [ScoredItem(self._ids[i], s, (reason,)) for i, s in top]
        complements, goes_with = self._relations.complements(anchor)
        allowed = np.flatnonzero(mask & goes_with & ~self._relations.same_kind(anchor))
        top = _top(allowed, complements[allowed], limit, self.catalog.categories, -(-limit // 2))
        return [ScoredItem(self._ids[i], s, (self._complement_reason(anchor, i),)) for i, s in top]

    def _complement_reason(self, anchor: int, item: int) -> Reason:
        anchor_id, title = self._ids[anchor], self._titles[anchor]
        if self._relations.compatibility.declared(anchor)[item] > 0:
            return Reason(ReasonCode.GOES_WITH, f"Goes with '{title}'", anchor_id)
        if self._relations.co_purchase(anchor)[item] > 0:
            return Reason(ReasonCode.BOUGHT_TOGETHER, f"Often bought together with '{title}'", anchor_id)
        if self._relations.category_affinity(anchor)[item] > 0:
            kinds = self._relations.category_name(anchor), self._relations.category_name(item)
            return Reason(
                ReasonCode.BOUGHT_TOGETHER, "Customers who buy {} also buy {}".format(*kinds), anchor_id
            )
        return Reason(ReasonCode.POPULAR, "Popular")

    def collaborative_similarity(self, anchor: int) -> np.ndarray:
        """The item-to-item models in order of precedence: the first decides, each later one breaks ties."""
        scores: np.ndarray = np.zeros(self.n_items, dtype=np.float32)
        if anchor >= self.catalog.n_trained:
            return scores  # added since training: nobody has viewed it with anything yet
        for rank, component in enumerate(self._similarity):
            similarity = component.similar(anchor)
            if similarity is not None:
                scores[: similarity.size] += np.float32(TIE_BREAK**rank) * similarity
        return scores

    def _indices(self, item_ids: tuple[str, ...]) -> np.ndarray:
        """Known items only, first occurrence kept, in the given order."""
        seen = dict.fromkeys(map(self._item_index.get, item_ids))
        seen.pop(None, None)
        return np.fromiter(seen, dtype=np.int64, count=len(seen))

    def _in_categories(self, categories: frozenset[str]) -> np.ndarray:
        """Whether each item is in one of these categories (read-only when it is a rule's set)."""
        mask = self._category_masks.get(categories)
        if mask is None:
            mask = np.isin(self.catalog.categories, list(categories))
        return mask

    def _allowed(self, item_filter: ItemFilter, exclude: tuple[str, ...], rule: TouchpointRule) -> np.ndarray:
        c = self.catalog
        mask = (self._live_in_stock if item_filter.in_stock_only else self._live).copy()
        for include in (item_filter.include_categories, rule.categories):
            if include:
                mask &= self._in_categories(include)
        for excluded in (item_filter.exclude_categories, rule.exclude_categories):
            if excluded:
                mask &= ~self._in_categories(excluded)
        # An item without a price cannot be shown to fit a price range.
        if item_filter.min_price is not None:
            mask &= c.prices >= item_filter.min_price
        if item_filter.max_price is not None:
            mask &= c.prices <= item_filter.max_price
        mask[self._indices(exclude)] = False
        return mask

    def _explain(
        self, items: np.ndarray, ctx: QueryContext, terms: dict[str, Term]
    ) -> list[tuple[Reason, ...]]:
        """The reasons of each recommended item: what led to it (the component that contributed most:
        a personal one names the closest history or session item, another gives its own reason, the
        fallback's reason when neither can), then any reason another component adds (fits the scene)."""
        components = self._a.components
        is_new = items >= self.catalog.n_trained
        new = is_new.tolist()
        leading = iter(self._leading(items[~is_new], terms))
        leaders = [FALLBACK if n else next(leading) for n in new]
        personal = self._because_of(items, ctx, leaders)
        result: list[tuple[Reason, ...]] = []
        for n, item in enumerate(items.tolist()):
            if new[n]:
                category = str(self.catalog.categories[item]).replace("_", " ")
                result.append((Reason(ReasonCode.NEW_IN_CATEGORY, f"New in {category}"),))
                continue
            leader = components[leaders[n]]
            because = personal[n]
            primary: Reason | None = because if leader.personal else leader.reason(ctx)
            if primary is None:
                leader, primary = self._fallback, self._fallback.reason(ctx)
            assert primary is not None  # the fallback always has a reason
            extras = [
                extra
                for component in components.values()
                if component is not leader and (extra := component.extra_reason(item, ctx)) is not None
            ]
            result.append((primary, *extras))
        return result

    def _new_item_scores(self, ctx: QueryContext, terms: dict[str, Term]) -> np.ndarray:
        """The blend for items added since training: each term from the component's own view of the new
        items' content where it has one (LightFM's feature embeddings), else from the mean of the item's
        category (popularity, the item-to-item models: a new lamp is worth what lamps are)."""
        total = np.zeros(self.catalog.size - self.catalog.n_trained, dtype=np.float32)
        for name, term in terms.items():
            component = self._a.components[FALLBACK if name == NOVELTY else name]
            raw = component.score_new_items(ctx, self._new_features)
            if raw is None:
                raw = self._category_means(term.full())
            total += (term.scale * (raw - term.mean)).astype(np.float32)
        return total

    def _category_means(self, raw: np.ndarray) -> np.ndarray:
        """Per new item, the mean of `raw` over the version's items of its category (the catalog mean
        for a category the version does not have)."""
        codes, new = self._trained_category_codes, self._new_category_codes
        sums = np.bincount(codes, weights=raw, minlength=self._category_sizes.size)
        means = np.divide(sums, self._category_sizes, out=np.zeros_like(sums), where=self._category_sizes > 0)
        return np.where(new >= 0, means[np.maximum(new, 0)], float(raw.mean()))

    def _leading(self, items: np.ndarray, terms: dict[str, Term]) -> list[str]:
        """Per item, the component that led to it: the user's own history and session (the personal
        components together) when they gave more than any other single component, else that one."""
        names = [name for name in terms if name != NOVELTY]
        if not items.size:
            return []
        contributions = np.stack([terms[name].at(items) for name in names])
        personal = np.array([self._a.components[name].personal for name in names])
        if not personal.any() or personal.all():
            chosen = contributions.argmax(axis=0)
        else:
            # Ties go to the first component in blend order, within the personal ones and the others.
            own, others = contributions[personal], contributions[~personal]
            by_history = own.sum(axis=0) > others.max(axis=0)
            chosen = np.where(
                by_history,
                np.flatnonzero(personal)[own.argmax(axis=0)],
                np.flatnonzero(~personal)[others.argmax(axis=0)],
            )
        return [names[c] for c in chosen.tolist()]

    def _because_of(self, items: np.ndarray, ctx: QueryContext, leading: list[str]) -> list[Reason | None]:
        """For each item led by a personal component, the session or history item closest to it by that
        component."""
        result: list[Reason | None] = [None] * items.size
        personal_names = [name for name, c in self._a.components.items() if c.personal]
        personal = np.array([n for n, name in enumerate(leading) if name in personal_names], dtype=np.int64)
        if not personal.size:
            return result
        _, _, ordered = self.scorer.history(ctx.user)
        strongest = np.argsort(-ctx.history_weight, kind="stable")[:EXPLAIN_HISTORY]
        candidates = np.concatenate([ctx.session, ctx.history[strongest]])
        was_ordered = np.concatenate([np.zeros(ctx.session.size, dtype=bool), ordered[strongest]])
        if not candidates.size:
            return result
        targets = items[personal]
        led_by = np.array([leading[n] for n in personal.tolist()])
        closeness = np.empty((candidates.size, targets.size))
        for name in personal_names:
            led = led_by == name
            if led.any():
                closeness[:, led] = self._a.components[name].closeness(candidates, targets[led])
        closeness[candidates[:, None] == targets[None, :]] = -np.inf  # an item does not explain itself
        # "Because you looked at" names only an item of the target's kind or one it goes with (no purifier
        # for a lamp); a history item's "customers who chose it also chose this" is the model's own word.
        looked_at = candidates[: ctx.session.size]
        if looked_at.size:
            related = self._relations.compatibility.related(looked_at, targets)
            closeness[: looked_at.size][~related] = -np.inf
        bests = closeness.argmax(axis=0)
        explained = np.isfinite(closeness[bests, np.arange(targets.size)])
        for n, best, found in zip(personal.tolist(), bests.tolist(), explained.tolist(), strict=True):
            if not found:
                continue
            related, title = self._ids[candidates[best]], self._titles[candidates[best]]
            if best < ctx.session.size:
                result[n] = Reason(ReasonCode.SIMILAR_TO_SESSION, f"Because you looked at '{title}'", related)
            elif was_ordered[best]:
                result[n] = Reason(
                    ReasonCode.BOUGHT_TOGETHER, f"Often bought together with '{title}'", related
                )
            else:
                result[n] = Reason(
                    ReasonCode.SIMILAR_TO_HISTORY, f"Customers who chose '{title}' also chose this", related
                )
        return result


def _top(
    allowed: np.ndarray, values: np.ndarray, limit: int, categories: np.ndarray, per_category: int
) -> list[tuple[int, float]]:
    """The `limit` best of the `allowed` items (scored `values`), best first (ties by item index, for
    stable answers). With a cap per category, items over the cap give way to the next best of other
    categories, and fill the remaining places only when nothing else qualifies."""
    if limit <= 0 or not allowed.size:
        return []

    if not per_category and limit < allowed.size:
        part = np.argpartition(-values, limit - 1)[:limit]
        allowed, values = allowed[part], values[part]
    order = np.lexsort((allowed, -values))
    ranked = [(int(allowed[i]), float(values[i])) for i in order]
    if not per_category:
        return ranked[:limit]
    chosen: list[tuple[int, float]] = []
    overflow: list[tuple[int, float]] = []
    counts: dict[str, int] = {}
    for item, score in ranked:
        category = categories[item]
        if counts.get(category, 0) < per_category:
            counts[category] = counts.get(category, 0) + 1
            chosen.append((item, score))
            if len(chosen) == limit:
                return chosen
        else:
            overflow.append((item, score))
    return chosen + overflow[: limit - len(chosen)]
