#!/usr/bin/env python3
"""Writes backup.db, the etcd snapshot docs/recovering-from-a-backup.md reads.

Three Secrets, as kube-apiserver stores them (protobuf, `k8s\\0` + a
runtime.Unknown), encrypted by `k8s-envelope encrypt` with enc.yaml (aescbc
key1), put into a fresh etcd in this order (revisions 2, 3, 4) and saved
with `etcdctl snapshot save`. Not run by CI (backup.db is committed); run
it again, with etcd, etcdctl and k8s-envelope on the PATH, to remake it.
"""

import os
import socket
import subprocess
import tempfile
import time


def varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    """A length-delimited field."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def secret(namespace, name, uid, created, data, kind_of_secret):
    time_ = varint(1 << 3 | 0) + varint(created)
    meta = field(1, name) + field(3, namespace) + field(5, uid) + field(8, time_)
    body = field(1, meta)
    for key in sorted(data):
        body += field(2, field(1, key) + field(2, data[key]))
    body += field(3, kind_of_secret)
    type_meta = field(1, "v1") + field(2, "Secret")
    return b"k8s\x00" + field(1, type_meta) + field(2, body) + field(3, "") + field(4, "")


SECRETS = [
    ("prod", "db-password", "3c1a77e0-5d1f-4c33-9d1b-0a5e1f2c8d41",
     {"password": b"s3cret", "user": b"app"}, "Opaque"),
    ("prod", "tls-cert", "8f2b0d4c-2e6a-4b1f-9c3d-5a7e9b1c3d5f",
     {"tls.crt": b"-----BEGIN CERTIFICATE-----\n", "tls.key": b"-----BEGIN PRIVATE KEY-----\n"},
     "kubernetes.io/tls"),
    ("default", "registry-token", "b7e4c2a1-6d3f-4e8b-a9c0-1f2e3d4c5b6a",
     {"token": b"t0ken"}, "Opaque"),
]
CREATED = 1796179999 + 1  # 2026-12-02T02:53:20Z


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as work:
        client, peer = free_port(), free_port()
        url = f"http://127.0.0.1:{client}"
        etcd = subprocess.Popen([
            "etcd", "--name=backup", f"--data-dir={work}/data",
            f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=backup=http://127.0.0.1:{peer}", "--log-level=error",
        ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if subprocess.run(["etcdctl", f"--endpoints={url}", "endpoint", "health"],
                                  capture_output=True).returncode == 0:
                    break
                time.sleep(0.2)
            for namespace, name, uid, data, kind in SECRETS:
                key = f"/registry/secrets/{namespace}/{name}"
                plain = secret(namespace, name, uid, CREATED, data, kind)
                stored = subprocess.run(
                    ["k8s-envelope", "encrypt", "--config", os.path.join(here, "enc.yaml"),
                     "--storage-key", key],
                    input=plain, capture_output=True, check=True).stdout
                subprocess.run(["etcdctl", f"--endpoints={url}", "put", key], input=stored,
                               check=True, stdout=subprocess.DEVNULL)
            out = os.path.join(here, "backup.db")
            if os.path.exists(out):
                os.remove(out)
            subprocess.run(["etcdctl", f"--endpoints={url}", "snapshot", "save", out],
                           check=True, capture_output=True)
        finally:
            etcd.kill()
            etcd.wait()


if __name__ == "__main__":
    main()
