"""Hevlayer (sync) and AsyncHevlayer (async): clients of a Layer gateway, on httpx.

Both are built from the operations in `_ops.py`: each operation is a method of both clients with
the operation's own parameters plus `with_perf` (return a `LayerResponse` with the call's
`LayerPerf` instead of the data alone).
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import httpx

from . import _ops

log = logging.getLogger("hevlayer")

DEFAULT_BASE_URL = "https://aws-us-east-1.hevlayer.com"
DEFAULT_TURBOPUFFER_URL = "https://aws-us-east-1.turbopuffer.com"


class Model(dict):
    """A JSON object whose members read as attributes too (`job.id` as well as `job["id"]`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Model({k: _wrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class HevlayerError(Exception):
    """An answer with an error status: `status`, the envelope's `error` kind and `message`, and
    the raw `body` (bytes)."""

    def __init__(self, status: int, error: Optional[str], message: str, body: bytes):
        super().__init__(f"{status} {error or ''}: {message}".strip())
        self.status = status
        self.error = error
        self.message = message
        self.body = body


@dataclass
class LayerPerf:
    latency_ms: float             # wall time measured by the client
    cache_status: Optional[str]   # x-layer-cache, when the gateway set it
    fallback: Optional[str]       # "turbopuffer_direct" when the call fell through


@dataclass
class LayerResponse:
    data: Any
    perf: LayerPerf


def _token(value: Optional[str]) -> Optional[str]:
    value = (value or "").strip()
    return value or None


class _Core:
    """Configuration and answer handling shared by both clients."""

    def __init__(self, base_url: Optional[str], api_key: Optional[str], timeout: float,
                 turbopuffer_api_key: Optional[str], turbopuffer_base_url: Optional[str],
                 fallback_to_turbopuffer: bool):
        self.base_url = (base_url or os.environ.get("LAYER_GATEWAY_URL")
                         or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = _token(api_key if api_key is not None
                              else os.environ.get("LAYER_GATEWAY_API_KEY"))
        self.timeout = timeout
        self.turbopuffer_api_key = _token(turbopuffer_api_key if turbopuffer_api_key is not None
                                          else os.environ.get("TURBOPUFFER_API_KEY"))
        self.turbopuffer_base_url = (turbopuffer_base_url
                                     or os.environ.get("TURBOPUFFER_API_URL")
                                     or DEFAULT_TURBOPUFFER_URL).rstrip("/")
        self.fallback_to_turbopuffer = fallback_to_turbopuffer

    def request(self, op: _ops.Op, direct: bool = False) -> Dict[str, Any]:
        token = self.turbopuffer_api_key if direct else self.api_key
        headers = {"Accept": "application/json", "User-Agent": "hevlayer-python/0.1.0"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kw: Dict[str, Any] = {"headers": headers, "params": op.params or None}
        if op.json is not None:
            kw["content"] = json.dumps(op.json).encode()
            headers["Content-Type"] = "application/json"
        base = self.turbopuffer_base_url if direct else self.base_url
        return {"method": op.method, "url": base + op.path, **kw}

    def can_fall_through(self, op: _ops.Op) -> bool:
        return op.fallback and self.fallback_to_turbopuffer and bool(self.turbopuffer_api_key)

    @staticmethod
    def answer(op: _ops.Op, res: httpx.Response, started: float, fallback: Optional[str],
               with_perf: bool) -> Any:
        perf = LayerPerf((time.perf_counter() - started) * 1000.0,
                         res.headers.get("x-layer-cache"), fallback)
        body = res.content
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode("utf-8", "replace")
        if res.status_code >= 400:
            error, message = None, None
            if isinstance(parsed, dict):
                error = parsed.get("error") if isinstance(parsed.get("error"), str) else None
                message = parsed.get("message") if isinstance(parsed.get("message"), str) else None
                if message is None and parsed.get("status") == "error":
                    message = error  # Turbopuffer's {"status":"error","error":"…"}
            elif isinstance(parsed, str):
                message = parsed
            raise HevlayerError(res.status_code, error, message or res.reason_phrase, body)
        data = _wrap(parsed)
        if op.query_headers and isinstance(data, dict):
            for header, name in (("x-layer-stable-as-of", "stable_as_of"),
                                 ("x-layer-next-cursor", "next_cursor")):
                value = res.headers.get(header)
                if value is not None:
                    data[name] = int(value) if value.isdigit() else value
        return LayerResponse(data, perf) if with_perf else data


def _is_running(job: Any) -> bool:
    return isinstance(job, dict) and job.get("status") == "running"


class Hevlayer:
    """A synchronous client. `base_url` and `api_key` default to $LAYER_GATEWAY_URL and
    $LAYER_GATEWAY_API_KEY; Turbopuffer-compatible calls fall through to Turbopuffer
    ($TURBOPUFFER_API_URL, $TURBOPUFFER_API_KEY) when the gateway cannot be reached."""

    def __init__(self, base_url: Optional[str] = None, api_key: Optional[str] = None,
                 timeout: float = 30.0, turbopuffer_api_key: Optional[str] = None,
                 turbopuffer_base_url: Optional[str] = None,
                 fallback_to_turbopuffer: bool = True, http_client: Optional[httpx.Client] = None):
        self._core = _Core(base_url, api_key, timeout, turbopuffer_api_key, turbopuffer_base_url,
                           fallback_to_turbopuffer)
        self._http = http_client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Hevlayer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, op: _ops.Op, with_perf: bool = False) -> Any:
        started = time.perf_counter()
        try:
            res = self._http.request(**self._core.request(op))
            return self._core.answer(op, res, started, None, with_perf)
        except httpx.TransportError as e:
            if not self._core.can_fall_through(op):
                raise
            log.warning("gateway unreachable (%s); falling through to Turbopuffer", e)
            res = self._http.request(**self._core.request(op, direct=True))
            return self._core.answer(op, res, started, "turbopuffer_direct", with_perf)

    def wait_for_warm_job(self, ns: str, job_id: str,
                          on_progress: Optional[Callable[[Any], None]] = None,
                          timeout: Optional[float] = None, initial_delay: float = 0.05,
                          max_delay: float = 2.0) -> Any:
        """Polls the job with exponential backoff until it is no longer running; returns it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = initial_delay
        while True:
            job = self.get_warm_job(ns, job_id)
            if on_progress:
                on_progress(job)
            if not _is_running(job):
                return job
            if deadline is not None and time.monotonic() + delay > deadline:
                raise TimeoutError(f"warm job {job_id} still running after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, max_delay)


class AsyncHevlayer:
    """The asynchronous twin of `Hevlayer` (same arguments, awaitable methods)."""

    def __init__(self, base_url: Optional[str] = None, api_key: Optional[str] = None,
                 timeout: float = 30.0, turbopuffer_api_key: Optional[str] = None,
                 turbopuffer_base_url: Optional[str] = None,
                 fallback_to_turbopuffer: bool = True,
                 http_client: Optional[httpx.AsyncClient] = None):
        self._core = _Core(base_url, api_key, timeout, turbopuffer_api_key, turbopuffer_base_url,
                           fallback_to_turbopuffer)
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncHevlayer":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def _call(self, op: _ops.Op, with_perf: bool = False) -> Any:
        started = time.perf_counter()
        try:
            res = await self._http.request(**self._core.request(op))
            return self._core.answer(op, res, started, None, with_perf)
        except httpx.TransportError as e:
            if not self._core.can_fall_through(op):
                raise
            log.warning("gateway unreachable (%s); falling through to Turbopuffer", e)
            res = await self._http.request(**self._core.request(op, direct=True))
            return self._core.answer(op, res, started, "turbopuffer_direct", with_perf)

    async def wait_for_warm_job(self, ns: str, job_id: str,
                                on_progress: Optional[Callable[[Any], None]] = None,
                                timeout: Optional[float] = None, initial_delay: float = 0.05,
                                max_delay: float = 2.0) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = initial_delay
        while True:
            job = await self.get_warm_job(ns, job_id)
            if on_progress:
                on_progress(job)
            if not _is_running(job):
                return job
            if deadline is not None and time.monotonic() + delay > deadline:
                raise TimeoutError(f"warm job {job_id} still running after {timeout}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


def _install(op_fn: Callable[..., _ops.Op]) -> None:
    """Makes `op_fn` a method of both clients: same parameters, plus `with_perf`."""

    @functools.wraps(op_fn)
    def sync_method(self: Hevlayer, *args: Any, with_perf: bool = False, **kwargs: Any) -> Any:
        return self._call(op_fn(*args, **kwargs), with_perf)

    @functools.wraps(op_fn)
    async def async_method(self: AsyncHevlayer, *args: Any, with_perf: bool = False,
                           **kwargs: Any) -> Any:
        return await self._call(op_fn(*args, **kwargs), with_perf)

    setattr(Hevlayer, op_fn.__name__, sync_method)
    setattr(AsyncHevlayer, op_fn.__name__, async_method)


for _op in _ops.OPERATIONS:
    _install(_op)
