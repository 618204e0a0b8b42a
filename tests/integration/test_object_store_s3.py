"""`layer serve --object-store s3://BUCKET/PREFIX --s3-endpoint URL` against a real s3rver.

docs/design.md §7.3 (src/snapshots/s3/s3_object_store.h). s3rver runs behind tests/s3/s3_front.py,
which recomputes every request's SigV4 signature with botocore and refuses a wrong one, so a
gateway whose requests pass is signing as S3 requires. Snapshot bodies are planted with boto3 (a
standard S3 client) under the store's prefix, and the orchestrated hint_cache_warm's snapshots
step, which reads the latest snapshot from the object store, reports them.

Without node, s3rver (tests/node_modules) or botocore the module is skipped, except under CI=true,
where it fails: CI installs all three (scripts/setup.sh).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request

import pytest

from layer_testlib import clean_env, run_layer
from test_cache_support import AUTH, req
from test_hint_cache_warm import SNAPS_ONLY, assert_error, assert_report, make_snapshot

HERE = os.path.dirname(os.path.abspath(__file__))
FRONT = os.path.join(os.path.dirname(HERE), "s3", "s3_front.py")
BUCKET = "layer-it"
KEY_ID = "AKIDLAYERIT"
SECRET = "it/secret+key"
AWS_ENV = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}


class S3Front:
    def __init__(self, tmp: str):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", FRONT, "--dir", os.path.join(tmp, "s3rver"), "--bucket", BUCKET,
             "--credentials", f"{KEY_ID}:{SECRET}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        info = json.loads(line) if line else {"error": "the front exited"}
        if "error" in info:
            self.proc.wait(timeout=10)
            raise RuntimeError(info["error"])
        self.port = info["port"]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        import boto3  # botocore is there (the front runs), boto3 comes with the same setup
        import botocore.config
        self.s3 = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
            config=botocore.config.Config(s3={"addressing_style": "path"}))

    def stats(self) -> dict:
        with urllib.request.urlopen(self.endpoint + "/_front/stats", timeout=10) as r:
            return json.loads(r.read())

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    try:
        front = S3Front(str(tmp_path_factory.mktemp("s3")))
    except (RuntimeError, OSError, ImportError, ValueError) as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"s3rver front did not start (CI must have node, s3rver, botocore): {e}")
        pytest.skip(f"s3rver front not available: {e}")
    yield front
    front.close()


def serve_s3(start_gateway, tmp_path, s3: S3Front, url: str, env=None, *extra):
    return start_gateway(None, "--data-dir", str(tmp_path / "gw-data"), "--access-log", "false",
                         "--object-store", url, "--s3-endpoint", s3.endpoint, *extra,
                         env=AWS_ENV if env is None else env)


def hint(gw, ns: str):
    return req(gw, "GET", f"/v1/namespaces/{ns}/hint_cache_warm?{SNAPS_ONLY}", headers=dict(AUTH))


def test_serve_reads_snapshots_from_s3_under_its_prefix(s3, start_gateway, tmp_path):
    before = s3.stats()
    gw = serve_s3(start_gateway, tmp_path, s3, f"s3://{BUCKET}/prod")
    assert (f"object store: s3://{BUCKET}/prod/ (region us-east-1, endpoint {s3.endpoint}, "
            f"path style, access key AKID…)") in gw.output(), gw.output()
    ns = "products"
    assert_report(hint(gw, ns), ns, "skipped", "skipped", "no_snapshot")

    older = make_snapshot(ns, 1715600000000, row_count=2,
                          fields=[{"name": "color", "values": [{"v": "red", "n": 2}]}], skipped=[])
    newer = make_snapshot(ns, 1715600400000)
    s3.put("prod/" + newer[0], newer[1])
    s3.put("prod/" + older[0], older[1])
    # Outside the prefix (the bucket's root, another prefix): never seen, however late.
    stray = make_snapshot(ns, 1999999999999)
    s3.put(stray[0], stray[1])
    s3.put("staging/" + stray[0], stray[1])
    # Noise under the prefix: not of the key scheme.
    s3.put(f"prod/snapshots/{ns}/zzzz.json", b"not json")

    body = assert_report(hint(gw, ns), ns, "skipped", "skipped", "completed")
    assert body["snapshots"]["key"] == newer[0], body  # the key within the store, unprefixed
    assert body["snapshots"]["watermark_ms"] == 1715600400000, body
    assert body["snapshots"]["sha"] == newer[2], body

    # A newer one appears: the next call picks it up.
    newest = make_snapshot(ns, 1715600500000, row_count=None, skipped=[])
    s3.put("prod/" + newest[0], newest[1])
    body = assert_report(hint(gw, ns), ns, "skipped", "skipped", "completed")
    assert (body["snapshots"]["key"], body["snapshots"]["sha"]) == (newest[0], newest[2]), body

    # Every request the gateway sent verified against botocore's signer; the gateway listed
    # (GET with list-type=2) and read (GET) through the front.
    after = s3.stats()
    assert after["rejected"] == before["rejected"], after["rejections"]
    assert after["verified"] > before["verified"] + 5, after


def test_a_wrong_secret_fails_the_snapshots_step_only(s3, start_gateway, tmp_path):
    before = s3.stats()["rejected"]
    gw = serve_s3(start_gateway, tmp_path, s3, f"s3://{BUCKET}/prod",
                  {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": "wrong"})
    body = assert_error(hint(gw, "products"), 502, "upstream_error")
    assert "SignatureDoesNotMatch" in body["message"], body
    assert s3.stats()["rejected"] > before
    # Paths that do not read the object store are unaffected.
    r = req(gw, "GET", "/v1/namespaces/products/hint_cache_warm?turbopuffer=false&documents=false"
            "&snapshots=false", headers=dict(AUTH))
    assert_report(r, "products", "skipped", "skipped", "skipped")


def test_an_unreachable_store_is_a_502(start_gateway, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    gw = start_gateway(None, "--data-dir", str(tmp_path / "gw-data"), "--access-log", "false",
                       "--object-store", f"s3://{BUCKET}/p", "--s3-endpoint",
                       f"http://127.0.0.1:{port}", env=AWS_ENV)
    body = assert_error(hint(gw, "products"), 502, "upstream_error")
    assert "attempts" in body["message"], body


def test_file_url_is_the_local_directory(start_gateway, tmp_path):
    from test_hint_cache_warm import put_object
    objects = str(tmp_path / "objects-by-url")
    gw = start_gateway(None, "--data-dir", str(tmp_path / "gw-data"), "--access-log", "false",
                       "--object-store", "file://" + objects)
    assert f"object store: directory {objects}" in gw.output(), gw.output()
    k, d, sha = make_snapshot("products", 1715600400000)
    put_object(objects, k, d)
    body = assert_report(hint(gw, "products"), "products", "skipped", "skipped", "completed")
    assert (body["snapshots"]["key"], body["snapshots"]["sha"]) == (k, sha), body


@pytest.mark.parametrize("args,env,says", [
    (["--object-store", "gs://bucket"], {}, "s3://BUCKET/PREFIX or file:///PATH"),
    (["--object-store", "s3://Bad_Bucket/p"], {}, "lower-case letters"),
    (["--object-store", "s3://bucket/a//b"], {}, "empty, '.' or '..' segment"),
    (["--object-store", "file://relative"], {}, "absolute path"),
    (["--object-store", "s3://bucket/p", "--object-store-dir", "/tmp/x"], {}, "give one"),
    (["--object-store", "s3://bucket/p", "--s3-endpoint", "127.0.0.1:9000"], {}, "--s3-endpoint"),
    (["--object-store", "s3://bucket/p", "--s3-region", "Not A Region"], {}, "--s3-region"),
    (["--object-store", "s3://bucket/p"], {"AWS_ACCESS_KEY_ID": "AKID"}, "must be set together"),
])
def test_bad_object_store_settings_exit_2_saying_why(tmp_path, args, env, says):
    base = {k: v for k, v in clean_env().items() if not k.startswith("AWS_")}
    rc, out, err = run_layer(["serve", "--listen", "127.0.0.1:0", "--data-dir",
                              str(tmp_path / "d"), *args], env={**base, **env})
    assert rc == 2, (rc, out, err)
    assert says in out + err, out + err
