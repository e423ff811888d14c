"""The Orrery Python client: a scientist's three lines.

    from orrery import Client
    hub = Client()                                    # ORRERY_URL, ORRERY_TOKEN, or the data dir
    y = hub.run("examples/digits-mlp-torchscript", x)  # numpy in, numpy out

Only the standard library and numpy. See python/README.md.
"""

from orrery.client import Client, OrreryError
from orrery.display import SearchResult, Servable

__all__ = ["Client", "OrreryError", "SearchResult", "Servable"]
