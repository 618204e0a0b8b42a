"""hevlayer: the Python client of Layer, a caching gateway in front of Turbopuffer.

    from hevlayer import AsyncHevlayer
    client = AsyncHevlayer()            # $LAYER_GATEWAY_URL, $LAYER_GATEWAY_API_KEY
    job = await client.warm_cache("products", page_size=1000)
    job = await client.get_warm_job("products", job.id)
"""
from ._client import (AsyncHevlayer, Hevlayer, HevlayerError, LayerPerf, LayerResponse,
                      Model)

__all__ = ["AsyncHevlayer", "Hevlayer", "HevlayerError", "LayerPerf", "LayerResponse", "Model"]
__version__ = "0.1.0"
