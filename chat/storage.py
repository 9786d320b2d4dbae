"""Static files storage: hashed, compressed names, also inside ES module imports."""

from servestatic.storage import CompressedManifestStaticFilesStorage


# servestatic ships no type information, so its storage class is Any to mypy.
class StaticStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]
    """ServeStatic's manifest storage, rewriting ``import ... from "./x.js"`` to hashed names.

    Without this, app.js would be cache-busted but the modules it imports would not.
    """

    support_js_module_import_aggregation = True
