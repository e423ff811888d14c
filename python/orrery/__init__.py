"""The Orrery Python client: a scientist's three lines.

    from orrery import Client
    hub = Client()                                    # ORRERY_URL, ORRERY_TOKEN, or the data dir
    y = hub.run("examples/digits-mlp-torchscript", x)  # numpy in, numpy out

Only the standard library and numpy. See python/README.md.
"""

from orrery.client import Client, Handle, OrreryError
from orrery.display import SearchResult, Servable

__all__ = ["Client", "Handle", "OrreryError", "SearchResult", "Servable"]
