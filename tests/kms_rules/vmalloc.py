# The rule sets live in kmemspec.campaign.vmalloc (so verify can run them installed).
from kmemspec.campaign.vmalloc import *  # noqa: F401,F403
from kmemspec.campaign.vmalloc import KmapRules, VmallocRules, linux_vmalloc_addr  # noqa: F401
