"""Per-category coverage: all 8+N categories against one, on the bundled district.

Goal (issue [2/7]): all categories' coverage in under 10x one category's time. The last line
printed is one JSON object.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from geo import CATEGORY_CODES, get_district
from geo.coverage import category_coverage
from geo.demand import cell_demand


def median_ms(fn: Callable[[], object], repeat: int = 15) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    d = get_district()
    demand = cell_demand(d)
    net, pos, cells, teams = d.network, d.positions, d.cells, d.teams

    def run(cats: list[str]) -> object:
        return category_coverage(net, pos, cells, demand, teams=teams, categories=cats)

    one = median_ms(lambda: run(["theory"]))
    every = median_ms(lambda: run(list(CATEGORY_CODES)))
    ratio = every / one
    print(f"{d.name}: {len(cells)} cells, {len(pos)} positions, {net.n_nodes} nodes")
    print(f"one category   {one:8.2f} ms")
    print(f"{len(CATEGORY_CODES)} categories  {every:8.2f} ms  ({ratio:.2f}x one; goal < 10x)")
    print(json.dumps({"district": d.name, "categories": len(CATEGORY_CODES),
                      "one_category_ms": round(one, 3), "all_categories_ms": round(every, 3),
                      "all_over_one": round(ratio, 3), "goal_met": ratio < 10}))


if __name__ == "__main__":
    main()
