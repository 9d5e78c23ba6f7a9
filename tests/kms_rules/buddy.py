# Moved to kmemspec.campaign.buddy; this re-export is removed once every rule set lives there.
from kmemspec.campaign.buddy import *  # noqa: F401,F403
from kmemspec.campaign.buddy import BuddyRules, linux_choice  # noqa: F401
