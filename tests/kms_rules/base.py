# Moved to kmemspec.campaign.base; this re-export is removed once every rule set lives there.
from kmemspec.campaign.base import *  # noqa: F401,F403
from kmemspec.campaign.base import ModelMachine, small_configs, snapshot  # noqa: F401
