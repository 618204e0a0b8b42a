#!/usr/bin/env python3
"""A standard S3 client (boto3, Debian's python3-boto3) for cross-checks in the tests: objects
Layer writes must read back with it, and objects it writes must read back with Layer.

    s3_client.py --endpoint URL --bucket B --credentials KEYID:SECRET get KEY    (bytes to stdout)
    s3_client.py ... put KEY                                                     (bytes from stdin)
    s3_client.py ... list PREFIX                                                 (keys, one a line)

Path-style addressing, region us-east-1, signed with SigV4 by botocore.
"""

import argparse
import sys

import boto3
import botocore.config


def client(endpoint: str, credentials: str):
    key_id, secret = credentials.split(":", 1)
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret,
                        config=botocore.config.Config(s3={"addressing_style": "path"},
                                                      retries={"max_attempts": 1}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--credentials", required=True)
    ap.add_argument("command", choices=["get", "put", "list"])
    ap.add_argument("key")
    a = ap.parse_args()
    c = client(a.endpoint, a.credentials)
    if a.command == "get":
        sys.stdout.buffer.write(c.get_object(Bucket=a.bucket, Key=a.key)["Body"].read())
    elif a.command == "put":
        c.put_object(Bucket=a.bucket, Key=a.key, Body=sys.stdin.buffer.read())
    else:
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=a.bucket, Prefix=a.key):
            for o in page.get("Contents", []):
                print(o["Key"])


if __name__ == "__main__":
    main()
