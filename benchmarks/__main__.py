"""`python -m benchmarks`: every benchmark, with the public data in ../shared/data where one needs it."""

from __future__ import annotations

from benchmarks import dispatch_city


def main() -> None:
    dispatch_city.main([])


if __name__ == "__main__":
    main()
