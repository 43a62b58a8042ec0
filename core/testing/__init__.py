"""The test harness Kassa and its plugins (ours and third parties') test against.

Installed as a pytest plugin (entry point ``pytest11``), so a plugin package's
tests get the ``app``, ``db``, ``clock``, organisation and user fixtures, and
:func:`register_plugin` to add a fake plugin for one test.
"""
from .services import ServiceUnavailable, require_postgres, require_redis  # noqa: F401
