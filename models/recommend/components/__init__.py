"""The registered components, in the order of the artifact's arrays and the blend's weights.

Adding a model: write its module (a `Component` subclass with its `Params`), add it here; the training
job fits it, the blend fitting weighs it, the artifact stores it, the service scores and explains with
it, and tests/models/recommend/test_component_contract.py checks it like the others.
"""

from __future__ import annotations

from models.recommend.component import Component
from models.recommend.components.als import Als
from models.recommend.components.ease import Ease
from models.recommend.components.lightfm import LightFM
from models.recommend.components.popularity import Popularity

COMPONENTS: tuple[type[Component], ...] = (Als, Ease, LightFM, Popularity)
BY_NAME: dict[str, type[Component]] = {c.name: c for c in COMPONENTS}
# Computed for every query: it stands in when no other component has a weight, it is what novelty
# pushes away from, and its reason explains items no other component explains.
FALLBACK = Popularity.name
NAMES: tuple[str, ...] = tuple(BY_NAME)
