#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the repository's test data.

Sources: the Go reference's vectors (tests/data/vectors, a copy of
../shared/vectors), Kubernetes' EncryptionConfiguration test data
(tests/data/conformance, a copy of ../shared/conformance), the fuzz
configuration (etcdctl dumps of the vectors' values, too), and the hand-picked seeds committed under fuzz/seeds/<target>/.

Inputs that carry a storage key use the layout of
k8s_envelope_fuzz::checks::split_storage_key: one byte of length, the key, the
value. Seeds are named by their SHA-1, as libFuzzer names corpus files, so
running this again adds nothing twice. Values larger than MAX_SEED bytes are
left out: they slow every run and add no new shapes.

Usage: python3 fuzz/seed.py   (from anywhere; writes into fuzz/corpus/)
"""

import base64
import glob
import hashlib
import json
import os
import sys

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)
DATA = os.path.join(ROOT, "tests", "data")
MAX_SEED = 4096

TARGETS = ["config", "config_scaled", "read", "static_round_trip", "kms_v2_object", "kms_v1_envelope", "jsonl", "etcd_dump", "snapshot", "object"]


def with_storage_key(storage_key: bytes, value: bytes) -> bytes:
    key = storage_key[:255]
    return bytes([len(key)]) + key + value


def strip_kms_prefix(stored: bytes, version: str):
    """The body after k8s:enc:kms:<version>:<name>:, or None."""
    prefix = b"k8s:enc:kms:" + version.encode() + b":"
    if not stored.startswith(prefix):
        return None
    rest = stored[len(prefix):]
    name_end = rest.find(b":")
    return None if name_end < 0 else rest[name_end + 1:]


def main() -> int:
    seeds = {target: set() for target in TARGETS}

    for path in sorted(glob.glob(os.path.join(DATA, "vectors", "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if line.strip()]
        for v in lines:
            storage_key = v["storage_key"].encode()
            plaintext = base64.b64decode(v["plaintext_b64"])
            stored = base64.b64decode(v["stored_b64"])
            seeds["config"].add(json.dumps(v["config"]).encode())
            seeds["read"].add(with_storage_key(storage_key, stored))
            seeds["static_round_trip"].add(with_storage_key(storage_key, plaintext))
            body = strip_kms_prefix(stored, "v2")
            if body is not None:
                seeds["kms_v2_object"].add(body)
            body = strip_kms_prefix(stored, "v1")
            if body is not None:
                seeds["kms_v1_envelope"].add(with_storage_key(storage_key, body))
            request = {
                "resource": v.get("resource", "secrets"),
                "storage_key": v["storage_key"],
                "plaintext_b64": v["plaintext_b64"],
                "stored_b64": v["stored_b64"],
            }
            seeds["jsonl"].add(json.dumps(request).encode() + b"\n")
        # etcdctl dumps of the stored values, a few keys each.
        for i in range(0, len(lines), 4):
            kvs = [{"key": base64.b64encode(v["storage_key"].encode()).decode(),
                    "create_revision": 2 + i + j, "mod_revision": 2 + i + j, "version": 1,
                    "value": v["stored_b64"]}
                   for j, v in enumerate(lines[i:i + 4])]
            dump = {"header": {"cluster_id": 1, "member_id": 2, "revision": 5 + i, "raft_term": 2},
                    "kvs": kvs, "count": len(kvs)}
            seeds["etcd_dump"].add(json.dumps(dump, separators=(",", ":")).encode() + b"\n")
        # A few requests per input as well, blank lines and all.
        small = [v for v in lines if len(v["stored_b64"]) < 200]
        for i in range(0, len(small), 8):
            chunk = small[i:i + 8]
            text = "\n".join(
                json.dumps({"storage_key": v["storage_key"], "stored_b64": v["stored_b64"],
                            "plaintext_b64": v["plaintext_b64"]})
                for v in chunk
            )
            seeds["jsonl"].add((text + "\n\n  \n").encode())

    for path in sorted(glob.glob(os.path.join(DATA, "conformance", "*", "*"))):
        with open(path, "rb") as f:
            seeds["config"].add(f.read())
    with open(os.path.join(DATA, "fuzz", "every-provider.yaml"), "rb") as f:
        seeds["config"].add(f.read())

    # Every built-in kind as the apiserver stores it, and as it serves it
    # (JSON, which is how custom resources are stored), from the shared
    # fixtures beside the repository.
    fixtures = os.path.join(ROOT, "..", "shared", "k8s-api-testdata", "HEAD")
    for path in sorted(glob.glob(os.path.join(fixtures, "*.pb")) + glob.glob(os.path.join(fixtures, "*.json"))):
        with open(path, "rb") as f:
            seeds["object"].add(f.read())

    # Hand-picked seeds and every input that ever crashed a target.
    for target in TARGETS:
        for directory in (os.path.join(FUZZ, "seeds", target), os.path.join(DATA, "fuzz", target)):
            for path in sorted(glob.glob(os.path.join(directory, "*"))):
                with open(path, "rb") as f:
                    seeds[target].add(f.read())

    # config_scaled runs about one input a second: only the shapes, not the
    # vectors' many configurations that differ in their keys alone.
    for path in sorted(glob.glob(os.path.join(DATA, "conformance", "*", "*"))):
        with open(path, "rb") as f:
            seeds["config_scaled"].add(f.read())
    seeds["config_scaled"] |= {s for s in seeds["config"] if b"kms" in s and len(s) < 600}

    for target, inputs in seeds.items():
        out = os.path.join(FUZZ, "corpus", target)
        os.makedirs(out, exist_ok=True)
        added = 0
        for data in sorted(inputs):
            # A snapshot is a few bbolt pages of 4 KiB at least.
            if len(data) > (65536 if target == "snapshot" else MAX_SEED):
                continue
            name = os.path.join(out, hashlib.sha1(data).hexdigest())
            if not os.path.exists(name):
                with open(name, "wb") as f:
                    f.write(data)
                added += 1
        print(f"{target}: {added} seeds added, {len(os.listdir(out))} files in corpus/{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
