"""The specification: invariants (Python predicates and Z3 formulas) and prose.

Importing this package registers every invariant in the catalogue.
"""

from . import buddy  # noqa: F401  (registers the buddy invariants)
from . import highmem  # noqa: F401  (pkmap_consistency)
from . import slab  # noqa: F401  (colour_within_slack, slab_accounting, size_class, ...)
from . import vmalloc  # noqa: F401  (page_table_consistency, vm_area_bounds, ...)
from .catalogue import check, check_all, invariant_names, status

__all__ = ["check", "check_all", "invariant_names", "status"]
