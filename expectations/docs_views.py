"""Data Docs views that compile GX's page templates once per process.

GX builds a new Jinja environment for every page it renders, so each gate run compiled some fifty
templates again, far more work than the validation itself. Jinja's own bytecode cache, kept
in memory and shared by every environment, makes that a load. Named in the site's config
(expectations.runner), the way GX lets a site choose its views.
"""

from __future__ import annotations

import threading
from typing import Any

from great_expectations.render.view.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket


class _CompiledTemplates(BytecodeCache):
    """Compiled templates by Jinja's key (the template's name and file); the bucket's checksum of
    the source still decides whether a stored one is used."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: Bucket) -> None:
        with self._lock:
            compiled = self._compiled.get(bucket.key)
        if compiled is not None:
            bucket.bytecode_from_string(compiled)

    def dump_bytecode(self, bucket: Bucket) -> None:
        compiled = bucket.bytecode_to_string()
        with self._lock:
            self._compiled[bucket.key] = compiled


COMPILED_TEMPLATES = _CompiledTemplates()


class CompiledPageView(DefaultJinjaPageView):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = COMPILED_TEMPLATES


class CompiledIndexPageView(DefaultJinjaIndexPageView):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = COMPILED_TEMPLATES


def site_views() -> dict[str, Any]:
    """The parts of a SiteBuilder config that choose these views (merged into GX's defaults)."""
    page = {"module_name": __name__, "class_name": CompiledPageView.__name__}
    return {
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "view": {"module_name": __name__, "class_name": CompiledIndexPageView.__name__},
        },
        "site_section_builders": {section: {"view": page} for section in ("expectations", "validations", "profiling")},
    }
