"""Build the specification as a static site: `python docs/build_site.py` -> out/site/.

Stages spec/*.md into out/site-src/ (spec/README.md as the home page), adds
- one page per worked example of the seed with its `kmemspec view` page embedded
  (examples/views/*.html, regenerated here from examples/scenarios/),
- one page per model module: each kernel function, its signature, docstring and source,
- a "kernel names" page: each kernel function -> the model function implementing it,
  the invariants and the Z3 proof obligations (layer, operation) that cover it,
and links every `kernel_name` in the prose to its model function. Then runs
`mkdocs build` (mkdocs + mkdocs-material: `pip install -e ".[docs]"`).
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "out" / "site-src"
MODEL_MODULES = ("boot", "mem_map", "page_alloc", "buddy_math", "gfp", "slab", "kmalloc",
                 "vmalloc", "pgtable", "highmem", "addr")

# The seed's worked examples: (page, title, scenario, frames window, what to look at).
EXAMPLES = [
    ("buddy_256_from_1024", "Buddy: 256 frames from a 1024-frame block, and back",
     "seed_split_and_merge", "0x37000:0x38000",
     "Steps 1-2 take the order-9 and order-8 blocks that mem_map (pfns 4096..6144) leaves "
     "below the first whole 1024-frame block. Step 3 splits the 1024-frame block at pfn "
     "0x37c00: expand() puts the upper 512 and 256 frames back on the free lists (marked "
     "red) and returns the lower 256. Steps 6-8 free the blocks again; each free merges "
     "with its buddy (pfn ^ size) while the buddy is free and of the same order, until the "
     "1024-frame block is whole. Step 9 is a double free, rejected. See "
     "[buddy.md](../buddy.md)."),
    ("slab_colour", "Slab: colouring of a cache", "slab_colour", "0:512",
     "A 1100-byte cache on a 16 MiB machine: 3 objects a slab, 764 bytes left over, 5 "
     "colours of 128 bytes. Each new slab starts its objects one colour offset further "
     "(yellow), until the sixth wraps to 0; the slab after the shrink gets the seventh "
     "colour step. See [slab.md](../slab.md)."),
    ("vmalloc_3_pages", "vmalloc: a 3-page area and its guard page", "vmalloc_seed",
     "HighMem",
     "vmalloc(12288) takes 4 pages of the vmalloc range (3 mapped + 1 unmapped guard "
     "page) and 3 order-0 pages from HighMem; the page table maps each virtual page to "
     "its pfn. See [vmalloc.md](../vmalloc.md)."),
]

# Kernel functions -> (proof layer, Z3 operations of that layer covering them).
COVERED_BY = {
    "__alloc_pages": ("buddy", ["rmqueue", "expand_step", "alloc_finish"]),
    "alloc_pages": ("buddy", ["rmqueue", "expand_step", "alloc_finish"]),
    "__rmqueue": ("buddy", ["rmqueue", "expand_step"]),
    "expand": ("buddy", ["expand_step"]),
    "__free_pages": ("buddy", ["put_page", "free_start", "merge_step", "free_finish"]),
    "__free_pages_bulk": ("buddy", ["free_start", "merge_step", "free_finish"]),
    "get_page": ("buddy", ["get_page"]),
    "free_all_bootmem": ("buddy", ["free_bootmem_page"]),
    "buffered_rmqueue": ("pcp", ["pcp_refill_start", "pcp_refill_add", "pcp_refill_end",
                                 "pcp_alloc"]),
    "rmqueue_bulk": ("pcp", ["pcp_refill_start", "pcp_refill_add", "pcp_refill_end"]),
    "free_hot_cold_page": ("pcp", ["pcp_free", "pcp_free_drain", "pcp_drain_step",
                                   "pcp_free_finish"]),
    "__drain_pages": ("pcp", ["pcp_drain_start", "pcp_drain_step", "pcp_drain_end"]),
    "drain_local_pages": ("pcp", ["pcp_drain_start", "pcp_drain_step", "pcp_drain_end"]),
    "cache_grow": ("slab", ["cache_grow", "cache_grow_nomem"]),
    "kmem_cache_alloc": ("slab", ["kmem_cache_alloc", "cache_grow"]),
    "kmem_cache_free": ("slab", ["kmem_cache_free"]),
    "kmalloc": ("slab", ["kmalloc"]),
    "kfree": ("slab", ["kfree"]),
    "slab_destroy": ("slab", ["slab_destroy"]),
    "get_vm_area": ("vmalloc", ["get_vm_area"]),
    "__get_vm_area": ("vmalloc", ["get_vm_area"]),
    "__vmalloc": ("vmalloc", ["get_vm_area", "map_step", "map_finish", "vmalloc_fail"]),
    "vmalloc": ("vmalloc", ["get_vm_area", "map_step", "map_finish", "vmalloc_fail"]),
    "vfree": ("vmalloc", ["vfree_start", "unmap_step", "remove_vm_area"]),
    "remove_vm_area": ("vmalloc", ["remove_vm_area"]),
    "kmap": ("vmalloc", ["kmap_new", "kmap_again"]),
    "kmap_high": ("vmalloc", ["kmap_new", "kmap_again"]),
    "kunmap": ("vmalloc", ["kunmap"]),
    "kunmap_high": ("vmalloc", ["kunmap"]),
    "flush_all_zero_pkmaps": ("vmalloc", ["flush_all_zero_pkmaps"]),
}
PROOF_PAGES = {"buddy": "proofs.md", "pcp": "proofs_pcp.md", "slab": "proofs_slab.md",
               "vmalloc": "proofs_vmalloc.md"}


def model_functions() -> dict[str, tuple[str, object]]:
    """Kernel-named functions of the model: name -> (module, function)."""
    import importlib
    found = {}
    for module_name in MODEL_MODULES:
        module = importlib.import_module(f"kmemspec.model.{module_name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__ and not (name.startswith("_") and
                                                         not name.startswith("__")):
                found.setdefault(name, (module_name, fn))
    return found


def coverage() -> dict[str, tuple[str, list[str], list[str]]]:
    """Kernel name -> (layer, operations, invariants), checked against the encodings."""
    from kmemspec.spec import z3_buddy, z3_pcp, z3_slab, z3_vmalloc
    layers = {"buddy": z3_buddy, "pcp": z3_pcp, "slab": z3_slab, "vmalloc": z3_vmalloc}
    out = {}
    for name, (layer, ops) in COVERED_BY.items():
        encoding = layers[layer]
        missing = [op for op in ops if op not in encoding.OPERATIONS]
        if missing:
            raise SystemExit(f"build_site: {name}: no Z3 operation {missing} in layer {layer}")
        # the pcp layer also proves the buddy invariants for its operations
        out[name] = (layer, ops, list(encoding.INVARIANTS)
                     + list(getattr(encoding, "BUDDY_INVARIANTS", ())))
    return out


def link_names(text: str, functions: dict, prefix: str) -> str:
    """`name` / `name()` in prose (not in code blocks, not already a link) -> a link."""
    out, in_code = [], False
    pattern = re.compile(r"(?<!\[)`([A-Za-z_][A-Za-z0-9_]*)(\(\))?`(?!\]\()")

    def repl(m):
        name = m.group(1)
        if name not in functions:
            return m.group(0)
        return f"[`{name}{m.group(2) or ''}`]({prefix}model/{functions[name][0]}.md#fn-{name})"

    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        out.append(line if in_code else pattern.sub(repl, line))
    return "".join(out)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from kmemspec.cmd_view import view_data, view_html
    functions = model_functions()
    covered = coverage()
    if SRC.exists():
        shutil.rmtree(SRC)
    (SRC / "model").mkdir(parents=True)
    (SRC / "examples").mkdir()
    (SRC / "views").mkdir()
    for md in sorted((ROOT / "spec").glob("*.md")):
        target = "index.md" if md.name == "README.md" else md.name
        (SRC / target).write_text(link_names(md.read_text(encoding="utf-8"), functions, ""))
    # worked examples, each with its view
    for page, title, scenario, window, prose in EXAMPLES:
        html = view_html(view_data(f"examples/scenarios/{scenario}.jsonl", window=window))
        (SRC / "views" / f"{scenario}.html").write_text(html, encoding="utf-8")
        (SRC / "examples" / f"{page}.md").write_text(
            f"# {title}\n\n{link_names(prose, functions, '../')}\n\n"
            f"Step with the buttons, the slider or the arrow keys (click into the view "
            f"first); [open the view on its own](../views/{scenario}.html).\n\n"
            f'<iframe src="../views/{scenario}.html" style="width:100%;height:1100px;'
            f'border:1px solid #ccc"></iframe>\n\n'
            f"The scenario (`examples/scenarios/{scenario}.jsonl`):\n\n```json\n"
            f"{(ROOT / 'examples/scenarios' / f'{scenario}.jsonl').read_text()}```\n",
            encoding="utf-8")
    # model reference: one page per module, one section per function
    for module_name in MODEL_MODULES:
        lines = [f"# model/{module_name}.py\n"]
        for name, (mod, fn) in sorted(functions.items()):
            if mod != module_name:
                continue
            lines.append(f"## `{name}` {{ #fn-{name} }}\n")
            if name in covered:
                layer, ops, invs = covered[name]
                lines.append(f"Covered by the {layer} proof obligations "
                             f"({', '.join(ops)}) × ({', '.join(invs)}): "
                             f"[{PROOF_PAGES[layer]}](../{PROOF_PAGES[layer]}).\n")
            doc = inspect.getdoc(fn)
            if doc:
                lines.append(doc + "\n")
            source = inspect.getsource(fn)
            line_no = inspect.getsourcelines(fn)[1]
            lines.append(f"`model/{module_name}.py`, line {line_no}:\n\n```python\n{source}```\n")
        (SRC / "model" / f"{module_name}.md").write_text("\n".join(lines), encoding="utf-8")
    # kernel names -> model function, invariants, proofs
    rows = ["# Kernel names\n",
            "Each kernel function the model implements, where, and which invariants and "
            "Z3 proof obligations (layer, operations) cover it. The invariant catalogue "
            "is also checked after every step of every scenario and campaign.\n",
            "| kernel name | model function | Z3 operations | invariants | proofs |",
            "|---|---|---|---|---|"]
    for name, (mod, _fn) in sorted(functions.items(), key=lambda kv: kv[0].lstrip("_")):
        layer, ops, invs = covered.get(name, ("", [], []))
        rows.append(f"| `{name}` | [model/{mod}.py](model/{mod}.md#fn-{name}) | "
                    f"{', '.join(ops)} | {', '.join(invs)} | "
                    f"{f'[{PROOF_PAGES[layer]}]({PROOF_PAGES[layer]})' if layer else ''} |")
    (SRC / "names.md").write_text("\n".join(rows) + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-f",
                    str(ROOT / "mkdocs.yml")], check=True, cwd=ROOT)
    print(f"site: {ROOT / 'out' / 'site' / 'index.html'}")


if __name__ == "__main__":
    main()
