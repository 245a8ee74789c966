"""Where derived data is cached (``$TOREID_CACHE``, else ``~/.cache/toreid``); keys are
content fingerprints chosen by each user.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("TOREID_CACHE", Path.home() / ".cache" / "toreid")).expanduser()
