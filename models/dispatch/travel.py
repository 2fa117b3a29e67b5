"""Travel distances and times between the problem's locations: the request's matrices, or haversine."""

from __future__ import annotations

import numpy as np

from models.dispatch.problem import Problem

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: np.ndarray, lng1: np.ndarray, lat2: np.ndarray, lng2: np.ndarray) -> np.ndarray:
    """Great-circle distance; the arguments broadcast against each other."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lng2) - np.radians(lng1)
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _coordinates(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    points = [t.location for t in problem.technicians] + [j.location for j in problem.jobs]
    return np.array([p.lat for p in points], dtype=float), np.array([p.lng for p in points], dtype=float)


def travel(problem: Problem, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kilometres, minutes) from each location in `rows` to each in `cols`.

    Locations are indexed as in the request's matrices: technicians first, then jobs.
    """
    options = problem.options
    n = len(problem.technicians) + len(problem.jobs)
    if options.distance_km is not None:
        km = options.distance_km.reshape(n, n)[np.ix_(rows, cols)]
    else:
        lat, lng = _coordinates(problem)
        km = haversine_km(lat[rows][:, None], lng[rows][:, None], lat[cols][None, :], lng[cols][None, :])
    if options.duration_min is not None:
        minutes = options.duration_min.reshape(n, n)[np.ix_(rows, cols)]
    else:
        minutes = km / options.speed_kmh * 60.0
    return km, minutes


def technicians_to_jobs(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """(kilometres, minutes), technicians × jobs."""
    n_tech = len(problem.technicians)
    return travel(problem, np.arange(n_tech), n_tech + np.arange(len(problem.jobs)))
