"""The console scripts' entry points (pyproject.toml `[project.scripts]`), outside the `databricks` namespace.

`databricks/__init__.py` and `databricks/labs/__init__.py` (ours, the SDK's or blueprint's, whichever comes first on
sys.path) call `pkgutil.extend_path`, and importing pkgutil (typing, collections, weakref, importlib.util) takes
about as long as starting Python. An entry point inside `databricks.` pays for it before its first line runs, so
`--help` and `status`, which need a few milliseconds of work, took three times as long as Python itself. These
entry points first set up the two namespace packages as `extend_path` would (`namespace_packages`), then import
the command. The labs entrypoint (`commands/labs_cli.py`, run by path) does the same for `status`.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`, which would import typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, NoReturn

NAMESPACES = ("databricks", "databricks.labs")


def namespace_packages() -> None:
    """Import `databricks` and `databricks.labs` without running their `__init__.py`, which only extends `__path__`.

    Each gets the `__path__` that `pkgutil.extend_path` would compute: every portion that the import system's
    finders (`sys.path_hooks`, so zip files and editable installs too) find on the parent's search path, in order.
    A package already imported is left as it is.
    """
    # `importlib.machinery.ModuleSpec`, without importing importlib (and warnings) for it.
    module_spec = type(sys.__spec__)
    search_path: Sequence[str] = sys.path
    for name in NAMESPACES:
        module = sys.modules.get(name)
        if module is None:
            parent, _, final_name = name.rpartition(".")
            portions = _portions(search_path, final_name)
            spec = module_spec(name, None, is_package=True)
            spec.submodule_search_locations = portions
            module = type(sys)(name)
            module.__spec__ = spec
            module.__path__ = portions
            module.__package__ = name
            module.__file__ = None
            sys.modules[name] = module
            if parent:
                setattr(sys.modules[parent], final_name, module)
        search_path = module.__path__


def _portions(search_path: Sequence[str], name: str) -> list[str]:
    portions: list[str] = []
    for entry in search_path:
        finder = _finder(entry) if isinstance(entry, str) else None
        spec = finder.find_spec(name) if finder is not None and hasattr(finder, "find_spec") else None
        for portion in (spec.submodule_search_locations or []) if spec is not None else []:
            if portion not in portions:
                portions.append(portion)
    return portions


def _finder(entry: str) -> Any:
    """`pkgutil.get_importer`: the cached finder for a sys.path entry, else the first path hook that takes it."""
    entry = os.fsdecode(entry)
    if entry in sys.path_importer_cache:
        return sys.path_importer_cache[entry]
    for hook in sys.path_hooks:
        try:
            finder = hook(entry)
        except ImportError:
            continue
        sys.path_importer_cache.setdefault(entry, finder)
        return finder
    return None


def rotator_main() -> NoReturn:
    """`databricks-oauth-rotator`."""
    namespace_packages()
    from databricks.labs.oauth_rotator.commands.rotator_script import rotator_main as main

    main()


def install_main() -> NoReturn:
    """`databricks-oauth-install`."""
    namespace_packages()
    from databricks.labs.oauth_rotator.commands.service_scripts import install_main as main

    main()


def status_main() -> NoReturn:
    """`databricks-oauth-status`."""
    namespace_packages()
    from databricks.labs.oauth_rotator.commands.service_scripts import status_main as main

    main()


def restart_main() -> NoReturn:
    """`databricks-oauth-restart`."""
    namespace_packages()
    from databricks.labs.oauth_rotator.commands.service_scripts import restart_main as main

    main()


def uninstall_main() -> NoReturn:
    """`databricks-oauth-uninstall`."""
    namespace_packages()
    from databricks.labs.oauth_rotator.commands.service_scripts import uninstall_main as main

    main()
