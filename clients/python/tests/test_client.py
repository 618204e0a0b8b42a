"""The Python client against a real gateway: the seed page's snippets verbatim, every route, the
Turbopuffer calls, with_perf, errors with the gateway's envelope, and fall-through to Turbopuffer
when the gateway is down (Layer-only calls fail fast)."""
import asyncio
import textwrap

import httpx
import pytest

from conftest import closed_port
from hevlayer import AsyncHevlayer, Hevlayer, HevlayerError, LayerResponse

SEED_ROWS = [{"id": i, "title": f"product {i}", "color": ["red", "blue"][i % 2]}
             for i in range(1, 51)]


def run_snippet(snippet: str, **names):
    """Runs a snippet of the seed page verbatim inside an async function; returns its locals."""
    src = "async def __snippet(client):\n" + textwrap.indent(snippet, "    ") + \
          "\n    return locals()\n"
    scope = dict(names)
    exec(src, scope)
    return asyncio.run(_with_client(scope["__snippet"]))


async def _with_client(fn):
    async with AsyncHevlayer() as client:
        return await fn(client)


@pytest.fixture
def products(env):
    with Hevlayer() as c:
        c.write("products", upsert_rows=SEED_ROWS)
    return env


def test_seed_snippets_run_verbatim(products):
    out = run_snippet(textwrap.dedent("""\
        result = await client.hint_cache_warm(
            "products",
            turbopuffer=False,
            documents=False,
            snapshots=True,
        )
        """))
    r = out["result"]
    assert r.namespace == "products"
    assert r.turbopuffer == {"enabled": False, "status": "skipped"}
    assert r.documents == {"enabled": False, "status": "skipped"}
    assert r.snapshots["enabled"] is True and r.snapshots["status"] in ("no_snapshot", "completed")

    out = run_snippet('job = await client.warm_cache("products", page_size=1000)\n'
                      'job = await client.get_warm_job("products", job.id)\n')
    job = out["job"]
    assert job.namespace == "products" and job.status in ("running", "completed"), job


def test_every_layer_route(products):
    with Hevlayer() as c:
        doc = c.fetch_document("products", 1)
        assert doc.id == 1 and doc.attributes["title"] == "product 1"
        docs = c.fetch_documents("products", [1, 2, 999], include_attributes=["color"])
        assert [d.id for d in docs.documents] == [1, 2] and docs.missing == [999]
        assert docs.documents[0].attributes == {"color": "blue"}
        job = c.warm_cache("products", page_size=10)
        seen = []
        done = c.wait_for_warm_job("products", job.id, on_progress=seen.append, timeout=60)
        assert done.status == "completed" and done.documents_scanned == len(SEED_ROWS), done
        assert seen and seen[-1] == done
        assert job.id in [j.id for j in c.list_warm_jobs("products").warm_jobs]
        policy = c.put_snapshot_policy("products", facet_fields=["color"], interval="1s")
        assert policy == {"facetFields": ["color"], "interval": "1s", "retention": "never"}
        assert c.get_snapshot_policy("products") == policy
        md = c.get_metadata("products")
        assert "layer" in md and md.layer["cache_state"] in ("cold", "warming", "warm")
        assert c.health().status == "ok"


def test_with_perf_reports_latency_cache_status_and_no_fallback(products):
    with Hevlayer() as c:
        c.fetch_document("products", 7)  # a miss that backfills
        for _ in range(100):
            r = c.fetch_document("products", 7, with_perf=True)
            if r.perf.cache_status == "hit":
                break
        assert isinstance(r, LayerResponse)
        assert r.data.id == 7
        assert r.perf.cache_status == "hit" and r.perf.fallback is None
        assert r.perf.latency_ms > 0


def test_turbopuffer_calls(products):
    with Hevlayer() as c:
        r = c.query("products", rank_by=["id", "asc"], top_k=3, include_attributes=["title"])
        assert [row.id for row in r.rows] == [1, 2, 3]
        multi = c.multi_query("products", [{"rank_by": ["id", "asc"], "top_k": 1},
                                           {"rank_by": ["id", "desc"], "top_k": 1}])
        assert [res["rows"][0]["id"] for res in multi.results] == [1, 50]
        assert "products" in [n.id for n in c.namespaces().namespaces]
        assert c.get_schema("products")["title"]["type"] == "string"
        w = c.write("products", patch_rows=[{"id": 1, "title": "patched"}])
        assert w.rows_patched == 1
        assert c.fetch_document("products", 1).attributes["title"] == "patched"


def test_errors_carry_the_envelope(products):
    with Hevlayer() as c:
        with pytest.raises(HevlayerError) as e:
            c.fetch_document("products", 12345)
        assert e.value.status == 404 and e.value.error == "not_found"
        assert "12345" in e.value.message
        with pytest.raises(HevlayerError) as e:
            c.warm_cache("products", page_size=0)
        assert e.value.status == 422 and e.value.error == "validation_error"
        assert "page_size" in e.value.message


def test_the_async_client_has_every_method(products):
    async def go():
        async with AsyncHevlayer() as c:
            r = await c.fetch_document("products", 3, with_perf=True)
            docs = await c.fetch_documents("products", [3])
            q = await c.query("products", rank_by=["id", "asc"], top_k=1)
            job = await c.warm_cache("products")
            done = await c.wait_for_warm_job("products", job.id, timeout=60)
            return r, docs, q, done
    r, docs, q, done = asyncio.run(go())
    assert r.data.id == 3 and r.perf.cache_status in ("hit", "miss")
    assert docs.documents[0].id == 3 and q.rows[0].id == 1
    assert done.status == "completed"


def test_fall_through_when_the_gateway_is_down(origin):
    down = f"http://127.0.0.1:{closed_port()}"
    direct = f"http://127.0.0.1:{origin.port}"
    with Hevlayer(base_url=down, api_key="k", turbopuffer_api_key="direct-key",
                  turbopuffer_base_url=direct) as c:
        r = c.write("fallthrough", upsert_rows=[{"id": 1, "v": 1}], with_perf=True)
        assert r.perf.fallback == "turbopuffer_direct" and r.perf.cache_status is None
        assert r.data.rows_upserted == 1
        q = c.query("fallthrough", rank_by=["id", "asc"], top_k=1, with_perf=True)
        assert q.perf.fallback == "turbopuffer_direct" and q.data.rows[0].id == 1
        # Layer-only calls fail fast: no Turbopuffer route can answer them.
        with pytest.raises(httpx.TransportError):
            c.warm_cache("fallthrough")
        with pytest.raises(httpx.TransportError):
            c.fetch_document("fallthrough", 1)
    # Without a direct key, or with fall-through off, the transport error is raised.
    with Hevlayer(base_url=down, api_key="k", turbopuffer_base_url=direct) as c:
        with pytest.raises(httpx.TransportError):
            c.write("fallthrough", upsert_rows=[{"id": 2}])
    with Hevlayer(base_url=down, api_key="k", turbopuffer_api_key="direct-key",
                  turbopuffer_base_url=direct, fallback_to_turbopuffer=False) as c:
        with pytest.raises(httpx.TransportError):
            c.write("fallthrough", upsert_rows=[{"id": 2}])


def test_queries_carry_the_stable_watermark(products):
    import time
    with Hevlayer() as c:
        deadline = time.monotonic() + 20
        while True:
            r = c.query("products", rank_by=["id", "asc"], top_k=1)
            if "stable_as_of" in r or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert isinstance(r.get("stable_as_of"), int) and r.stable_as_of > 0, r
