"""Static files storage: hashed, compressed names, also inside ES module imports."""

from servestatic.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    """ServeStatic's manifest storage, rewriting ``import ... from "./x.js"`` to hashed names.

    Without this, app.js would be cache-busted but the modules it imports would not.
    """

    support_js_module_import_aggregation = True
