"""Travel distances and times between the problem's locations: the request's matrices, or haversine."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.dispatch.blocks import by_rows
from models.dispatch.problem import Options, Problem, n_locations

EARTH_RADIUS_KM = 6371.0088


def unit_vectors(lat: np.ndarray, lng: np.ndarray) -> np.ndarray:
    """Points on the unit sphere, one row per (lat, lng) in degrees."""
    phi, lam = np.radians(lat), np.radians(lng)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


def great_circle_km(a: np.ndarray, b: np.ndarray, workers: int = 1) -> np.ndarray:
    """Great-circle distances between the unit vectors in `a` (rows) and in `b` (columns): the chord
    from one dot product per pair, which a matrix product computes for many pairs at once (as exact as
    the haversine formula to about a centimetre)."""
    km = np.empty((a.shape[0], b.shape[0]))

    def fill(rows: slice) -> None:
        block = np.matmul(a[rows], b.T, out=km[rows])
        block *= -2.0
        block += 2.0
        np.clip(block, 0.0, 4.0, out=block)
        np.sqrt(block, out=block)
        block *= 0.5
        np.arcsin(block, out=block)
        block *= 2 * EARTH_RADIUS_KM

    by_rows(km.shape[0], fill, workers)
    return km


def _coordinates(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    points = (
        [t.location for t in problem.technicians]
        + [j.location for j in problem.jobs]
        + [t.end_location for t in problem.technicians if t.end_location is not None]
    )
    return np.array([p.lat for p in points], dtype=float), np.array([p.lng for p in points], dtype=float)


def locations(problem: Problem) -> np.ndarray:
    """Unit vectors of every location (technicians, jobs, then end locations), for `legs`."""
    return unit_vectors(*_coordinates(problem))


def end_nodes(problem: Problem) -> np.ndarray:
    """Where each technician's ROUTE day ends, as a location index: its own (back at `location`), or
    its end location's, which follow the jobs in technician order."""
    n_tech, n_jobs = len(problem.technicians), len(problem.jobs)
    ends, extra = np.arange(n_tech), n_tech + n_jobs
    for t, tech in enumerate(problem.technicians):
        if tech.end_location is not None:
            ends[t], extra = extra, extra + 1
    return ends


def end_node(problem: Problem, t: int) -> int:
    """`end_nodes(problem)[t]`, without the others."""
    techs = problem.technicians
    if techs[t].end_location is None:
        return t
    return len(techs) + len(problem.jobs) + sum(u.end_location is not None for u in techs[:t])


def cut(options: Options, places: int, nodes: np.ndarray) -> Options:
    """The options with the request's matrices (over `places` locations) cut to `nodes`, in that
    order: a sub-problem's or a reshaped problem's own layout."""

    def part(matrix: np.ndarray | None) -> np.ndarray | None:
        return None if matrix is None else matrix.reshape(places, places)[np.ix_(nodes, nodes)].ravel()

    return replace(options, distance_km=part(options.distance_km), duration_min=part(options.duration_min))


def legs(
    problem: Problem, points: np.ndarray, origins: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(kilometres, minutes) from each origin to the end at the same position: a route's legs, without
    the matrix `travel` makes. `points` from `locations`."""
    options = problem.options
    n = n_locations(problem)
    if options.distance_km is not None:
        km = options.distance_km.reshape(n, n)[origins, ends]
    else:
        chord = np.sqrt(np.clip(2.0 - 2.0 * (points[origins] * points[ends]).sum(axis=1), 0.0, 4.0))
        km = 2 * EARTH_RADIUS_KM * np.arcsin(0.5 * chord)
    if options.duration_min is not None:
        minutes = options.duration_min.reshape(n, n)[origins, ends]
    else:
        minutes = km * (60.0 / options.speed_kmh)
    return km, minutes


def travel(
    problem: Problem, rows: np.ndarray, cols: np.ndarray, points: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(kilometres, minutes) from each location in `rows` to each in `cols`; `points` from `locations`
    saves recomputing them when many small matrices are asked for.

    Locations are indexed as in the request's matrices: technicians, jobs, then end locations.
    """
    options = problem.options
    n = n_locations(problem)
    if options.distance_km is not None:
        km = options.distance_km.reshape(n, n)[np.ix_(rows, cols)]
    else:
        if points is None:
            points = locations(problem)
        km = great_circle_km(points[rows], points[cols], options.workers)

    if options.duration_min is not None:
        minutes = options.duration_min.reshape(n, n)[np.ix_(rows, cols)]
    else:
        minutes = np.empty_like(km)
        by_rows(
            km.shape[0],
            lambda r: np.multiply(km[r], 60.0 / options.speed_kmh, out=minutes[r]),
            options.workers,
        )
    return km, minutes


def technicians_to_jobs(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """(kilometres, minutes) from each technician to each job, as jobs × technicians arrays."""
    n_tech = len(problem.technicians)
    techs, jobs = np.arange(n_tech), n_tech + np.arange(len(problem.jobs))
    if problem.options.distance_km is None and problem.options.duration_min is None:
        return travel(problem, jobs, techs)  # great circles are symmetric: computed in the layout used
    km, minutes = travel(problem, techs, jobs)  # the request's matrices go from row to column
    return np.ascontiguousarray(km.T), np.ascontiguousarray(minutes.T)
