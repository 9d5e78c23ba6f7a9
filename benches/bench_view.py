"""`kmemspec view` on a 20,000-step scenario on the seed machine (896 MiB low + 128 MiB
high, linux-2.6-i386): the page's size, and in headless Chromium the time to open it
and to step (next, prev, a jump to the last step and back).

Targets (issue 14): under 20 MB; opens and steps in under a second per step.
Needs Debian's chromium and chromium-driver and selenium (the test extra).

    python benches/bench_view.py [--steps 20000] [--check end|every-step]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import open_browser  # noqa: E402  (tests/browser.py: the tests' driver)

from kmemspec.cmd_view import view_data, view_html  # noqa: E402

BOOT = {"op": "boot", "profile": "linux-2.6-i386", "phys_pages": 229376,
        "highmem_pages": 32768, "iomem_pages": 0}


def scenario(steps: int, seed: int = 14) -> list[dict]:
    """Pages of orders 0..3, kmalloc of 8..4096 bytes and vmalloc of 1..16 pages,
    allocated and freed at random with a few hundred live at a time."""
    rng = random.Random(seed)
    lines, live = [BOOT], []
    for n in range(steps):
        if live and (len(live) > 300 or rng.random() < 0.45):
            kind, name, extra = live.pop(rng.randrange(len(live)))
            if kind == "page":
                lines.append({"op": "__free_pages", "page": f"${name}", "order": extra})
            elif kind == "kmalloc":
                lines.append({"op": "kfree", "addr": f"${name}"})
            else:
                lines.append({"op": "vfree", "addr": f"${name}"})
            continue
        name, r = f"v{n}", rng.random()
        if r < 0.4:
            order = rng.choice((0, 0, 0, 1, 2, 3))
            lines.append({"op": "alloc_pages", "gfp": "GFP_KERNEL", "order": order, "as": name})
            live.append(("page", name, order))
        elif r < 0.9:
            lines.append({"op": "kmalloc", "size": rng.choice((8, 32, 100, 192, 500, 1024, 4096)),
                          "gfp": "GFP_KERNEL", "as": name})
            live.append(("kmalloc", name, 0))
        else:
            lines.append({"op": "vmalloc", "size": 4096 * rng.randint(1, 16), "as": name})
            live.append(("vmalloc", name, 0))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--check", choices=("end", "every-step"), default="end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in scenario(args.steps)))
        t0 = time.perf_counter()
        data = view_data(str(path), check_every_step=args.check == "every-step")
        page = view_html(data)
        build = time.perf_counter() - t0
        out = Path(tmp) / "bench.html"
        out.write_text(page)
        size = out.stat().st_size
        print(f"{len(data['steps'])} steps (--check {args.check}): built in {build:.1f} s, "
              f"{size / 1e6:.2f} MB (target < 20 MB)")
        driver = open_browser(required=True)
        try:
            t0 = time.perf_counter()
            driver.get(out.as_uri())
            driver.find_element("id", "stepno")
            opened = time.perf_counter() - t0
            print(f"open (load, parse, draw step 0): {opened:.2f} s")
            worst, times = 0.0, []
            for button in ["next"] * 50 + ["prev"] * 20:
                t0 = time.perf_counter()
                driver.find_element("id", button).click()
                driver.find_element("id", "stepno").text
                times.append(time.perf_counter() - t0)
            worst = max(times)
            print(f"next/prev clicks: mean {sum(times) / len(times) * 1000:.0f} ms, "
                  f"worst {worst * 1000:.0f} ms (target < 1000 ms)")
            for target in (len(data["steps"]), len(data["steps"]) // 2, 0):
                t0 = time.perf_counter()
                driver.execute_script(f"goTo({target})")
                text = driver.find_element("id", "stepno").text
                print(f"jump to step {target}: {(time.perf_counter() - t0) * 1000:.0f} ms ({text})")
        finally:
            driver.quit()


if __name__ == "__main__":
    os.environ.setdefault("KMEMSPEC_BROWSER_REQUIRED", "1")
    main()
