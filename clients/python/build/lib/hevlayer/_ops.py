"""The operations of the Layer API and the Turbopuffer calls made through it, as data.

Each operation is a function that returns an `Op`: the HTTP request to make and what to do with
the answer. The sync and async clients (`_client.py`) share these, so every route is written
once. `fallback` marks the calls that need no Layer state and may fall through to Turbopuffer
directly when the gateway cannot be reached (docs: clients/python/README.md).
"""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional


@dataclass
class Op:
    method: str
    path: str
    params: Dict[str, str] = field(default_factory=dict)
    json: Any = None
    fallback: bool = False       # may fall through to Turbopuffer on a transport failure
    query_headers: bool = False  # copy x-layer-stable-as-of / x-layer-next-cursor into the data


def _ns(ns: str) -> str:
    if not isinstance(ns, str) or not ns:
        raise ValueError("namespace must be a non-empty string")
    return urllib.parse.quote(ns, safe="")


def _seg(value: Any) -> str:
    return urllib.parse.quote(str(value), safe="")


def _bool(v: bool) -> str:
    return "true" if v else "false"


def _set(params: Dict[str, str], name: str, value: Any) -> None:
    """Sets a query parameter unless it is None; booleans are sent explicitly, false included."""
    if value is None:
        return
    params[name] = _bool(value) if isinstance(value, bool) else str(value)


# ---- Documents ----

def fetch_document(ns: str, id: Any, include_attributes: Optional[Iterable[str]] = None) -> Op:
    params: Dict[str, str] = {}
    if include_attributes is not None:
        params["include_attributes"] = ",".join(include_attributes)
    return Op("GET", f"/v2/namespaces/{_ns(ns)}/documents/{_seg(id)}", params)


def fetch_documents(ns: str, ids: List[Any],
                    include_attributes: Optional[Iterable[str]] = None) -> Op:
    body: Dict[str, Any] = {"ids": list(ids)}
    if include_attributes is not None:
        body["include_attributes"] = list(include_attributes)
    return Op("POST", f"/v2/namespaces/{_ns(ns)}/documents", json=body)


# ---- Warming ----

def warm_cache(ns: str, page_size: Optional[int] = None) -> Op:
    params: Dict[str, str] = {}
    _set(params, "page_size", page_size)
    return Op("POST", f"/v2/namespaces/{_ns(ns)}/warm", params)


def get_warm_job(ns: str, job_id: str) -> Op:
    return Op("GET", f"/v2/namespaces/{_ns(ns)}/warm-jobs/{_seg(job_id)}")


def list_warm_jobs(ns: str) -> Op:
    return Op("GET", f"/v2/namespaces/{_ns(ns)}/warm-jobs")


def cancel_warm_job(ns: str, job_id: str) -> Op:
    return Op("DELETE", f"/v2/namespaces/{_ns(ns)}/warm-jobs/{_seg(job_id)}")


def hint_cache_warm(ns: str, turbopuffer: Optional[bool] = None,
                    documents: Optional[bool] = None, snapshots: Optional[bool] = None,
                    page_size: Optional[int] = None) -> Op:
    """With no option a raw passthrough; with any, Layer's orchestration. `False` is sent."""
    params: Dict[str, str] = {}
    _set(params, "turbopuffer", turbopuffer)
    _set(params, "documents", documents)
    _set(params, "snapshots", snapshots)
    _set(params, "page_size", page_size)
    return Op("GET", f"/v1/namespaces/{_ns(ns)}/hint_cache_warm", params)


# ---- Snapshots ----

def get_snapshot_policy(ns: str) -> Op:
    return Op("GET", f"/v2/namespaces/{_ns(ns)}/snapshot-policy")


def put_snapshot_policy(ns: str, facet_fields: Optional[List[str]] = None,
                        interval: Optional[str] = None, retention: Optional[str] = None) -> Op:
    body: Dict[str, Any] = {}
    if facet_fields is not None:
        body["facetFields"] = list(facet_fields)
    if interval is not None:
        body["interval"] = interval
    if retention is not None:
        body["retention"] = retention
    return Op("PUT", f"/v2/namespaces/{_ns(ns)}/snapshot-policy", json=body)


def get_history(ns: str, limit: Optional[int] = None, before: Optional[int] = None) -> Op:
    params: Dict[str, str] = {}
    _set(params, "limit", limit)
    _set(params, "before", before)
    return Op("GET", f"/v2/namespaces/{_ns(ns)}/history", params)


def get_snapshot(ns: str, sha: str) -> Op:
    return Op("GET", f"/v2/namespaces/{_ns(ns)}/snapshots/{_seg(sha)}")


def create_snapshot_job(ns: str, field: str, source: Optional[str] = None,
                        filters: Any = None, page_size: Optional[int] = None) -> Op:
    body: Dict[str, Any] = {"field": field}
    if source is not None:
        body["source"] = source
    if filters is not None:
        body["filters"] = filters
    if page_size is not None:
        body["page_size"] = page_size
    return Op("POST", f"/v2/namespaces/{_ns(ns)}/snapshots", json=body)


def list_snapshot_jobs(ns: str) -> Op:
    return Op("GET", f"/v2/namespaces/{_ns(ns)}/snapshot-jobs")


def get_snapshot_job(ns: str, job_id: str) -> Op:
    return Op("GET", f"/v2/namespaces/{_ns(ns)}/snapshot-jobs/{_seg(job_id)}")


# ---- Namespaces and metadata ----

def get_metadata(ns: str) -> Op:
    return Op("GET", f"/v2/namespaces/{_ns(ns)}/metadata")


def namespaces(prefix: Optional[str] = None, cursor: Optional[str] = None,
               page_size: Optional[int] = None) -> Op:
    params: Dict[str, str] = {}
    _set(params, "prefix", prefix)
    _set(params, "cursor", cursor)
    _set(params, "page_size", page_size)
    return Op("GET", "/v1/namespaces", params, fallback=True)


def get_schema(ns: str) -> Op:
    return Op("GET", f"/v1/namespaces/{_ns(ns)}/schema", fallback=True)


def update_schema(ns: str, schema: Dict[str, Any]) -> Op:
    return Op("POST", f"/v1/namespaces/{_ns(ns)}/schema", json=schema, fallback=True)


def delete_namespace(ns: str) -> Op:
    return Op("DELETE", f"/v2/namespaces/{_ns(ns)}")


def health() -> Op:
    return Op("GET", "/health")


# ---- Turbopuffer writes and queries ----

def write(ns: str, **body: Any) -> Op:
    """`upsert_rows`, `patch_rows`, `deletes`, `delete_by_filter`, `distance_metric`, ..."""
    return Op("POST", f"/v2/namespaces/{_ns(ns)}", json=body, fallback=True)


def query(ns: str, **body: Any) -> Op:
    """`rank_by`, `top_k`, `filters`, `include_attributes`, `consistency`, ..."""
    return Op("POST", f"/v2/namespaces/{_ns(ns)}/query", json=body, fallback=True,
              query_headers=True)


def multi_query(ns: str, queries: List[Dict[str, Any]], **body: Any) -> Op:
    return Op("POST", f"/v2/namespaces/{_ns(ns)}/query", json={"queries": queries, **body},
              fallback=True, query_headers=True)


def explain_query(ns: str, **body: Any) -> Op:
    return Op("POST", f"/v2/namespaces/{_ns(ns)}/explain_query", json=body, fallback=True)


OPERATIONS = [
    fetch_document, fetch_documents, warm_cache, get_warm_job, list_warm_jobs, cancel_warm_job,
    hint_cache_warm, get_snapshot_policy, put_snapshot_policy, get_history, get_snapshot,
    create_snapshot_job, list_snapshot_jobs, get_snapshot_job, get_metadata, namespaces,
    get_schema, update_schema, delete_namespace, health, write, query, multi_query,
    explain_query,
]
