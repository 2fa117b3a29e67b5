"""The contract every registered recommendation component keeps (as implicit's shared test mixin does
for its models): it fits on the demo world, scores the whole catalog with finite numbers, is the same
after saving to named arrays and loading them back without pickle, refuses arrays of the wrong shape,
fits the same twice with one seed, and explains what it leads."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.recommend.component import ArtifactError, Component, QueryContext, Reason, TrainingData
from models.recommend.components import COMPONENTS, FALLBACK, NAMES
from training import dataset
from training.readers import DEFAULT_EVENT_WEIGHTS, read_items, read_users


@pytest.fixture(scope="module")
def data(world: dict[str, Path]) -> TrainingData:
    items, _ = read_items(world["items.csv"])
    users, _ = read_users(world["users.csv"])
    return dataset.from_events(
        world["events.csv"], items, users, DEFAULT_EVENT_WEIGHTS, None, DEFAULT_EVENT_WEIGHTS["click"]
    )


@pytest.fixture(scope="module", params=COMPONENTS, ids=NAMES)
def fitted(request: pytest.FixtureRequest, data: TrainingData) -> Component:
    component: type[Component] = request.param
    # The last candidate: EASE's with recency on (the first has it off).
    model = component.fit(data, component.candidates(component.Params())[-1], seed=3)
    assert model is not None, f"{component.name} fits the demo world"
    return model


def contexts(data: TrainingData) -> dict[str, QueryContext]:
    history = data.confidence[0]
    nothing, no_weight = np.empty(0, np.int64), np.empty(0, np.float32)
    user_city = str(data.user_cities[0])
    return {
        "known user": QueryContext(
            0,
            history.indices.astype(np.int64),
            history.data,
            nothing,
            2.0,
            "browse",
            "home_feed",
            user_city,
            history_last_seen=data.last_seen[data.confidence.indptr[0] : data.confidence.indptr[1]],
        ),
        "visitor with a session": QueryContext(None, nothing, no_weight, np.array([1, 2]), 2.0, "new_home"),
        "anonymous visitor": QueryContext(None, nothing, no_weight, nothing, 2.0),
    }


def test_scores_cover_the_catalog_with_finite_numbers(fitted: Component, data: TrainingData) -> None:
    answered = 0
    for name, ctx in contexts(data).items():
        scores = fitted.score(ctx)
        if scores is None:
            assert name != "known user", "every component speaks for a user it was fitted on"
            continue
        answered += 1
        assert scores.shape == (len(data.item_ids),) and np.all(np.isfinite(scores)), name
    assert answered >= 1
    if fitted.name == FALLBACK:
        assert answered == len(contexts(data))  # the fallback answers every query


def test_named_arrays_round_trip_without_pickle(fitted: Component, data: TrainingData) -> None:
    buffer = io.BytesIO()
    arrays: dict[str, Any] = fitted.arrays()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        loaded = type(fitted).from_arrays(
            {k: npz[k] for k in npz.files}, len(data.item_ids), len(data.user_ids)
        )
    for ctx in contexts(data).values():
        before, after = fitted.score(ctx), loaded.score(ctx)
        assert (before is None and after is None) or np.array_equal(before, after)


def test_arrays_of_the_wrong_shape_are_refused(fitted: Component, data: TrainingData) -> None:
    arrays = fitted.arrays()
    for key, value in arrays.items():
        if value.ndim >= 1 and value.shape[0] == len(data.item_ids):
            broken = {**arrays, key: value[:-1]}
            with pytest.raises(ArtifactError):
                type(fitted).from_arrays(broken, len(data.item_ids), len(data.user_ids))
            return
    with pytest.raises(ArtifactError):  # no per-item array: then fewer users than it was fitted on
        type(fitted).from_arrays(arrays, len(data.item_ids), len(data.user_ids) + 1)


def test_one_seed_fits_the_same_model_twice(fitted: Component, data: TrainingData) -> None:
    component = type(fitted)
    again = component.fit(data, component.candidates(component.Params())[-1], seed=3)
    assert again is not None
    for key, value in fitted.arrays().items():
        np.testing.assert_array_equal(again.arrays()[key], value, err_msg=f"{fitted.name}.{key}")


def test_what_it_leads_it_can_explain(fitted: Component, data: TrainingData) -> None:
    ctx = contexts(data)["known user"]
    if fitted.personal:
        anchors, targets = ctx.history[:3], np.arange(5)
        assert fitted.closeness(anchors, targets).shape == (anchors.size, targets.size)
    else:
        assert isinstance(fitted.reason(ctx), Reason)
    extra = fitted.extra_reason(0, ctx)
    assert extra is None or isinstance(extra, Reason)


def test_parameters_have_defaults_and_candidates() -> None:
    for component in COMPONENTS:
        assert component.candidates(component.Params()), component.name
