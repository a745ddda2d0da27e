#!/usr/bin/env python3
"""The performance targets, as ratios measured in one run.

Runs the Go reference (`k8sref bench`, kube-apiserver's transformers on Go's
standard library) and our criterion benches in one go, interleaved, on the
same machine, and prints every target with both numbers and the ratio:

    python3 benches/compare.py                 # default build (RustCrypto)
    python3 benches/compare.py --aws-lc        # with the aws-lc feature

The Go numbers are medians of --go-runs runs of --go-seconds per phase; ours
are criterion medians (target/criterion, or target/aws-lc/criterion). The
machine is shared and noisy: compare ratios from one run, not numbers across
runs. Needs ../shared/tools/k8sref/bin/k8sref (its build.sh builds it).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
K8SREF = ROOT.parent / "shared" / "tools" / "k8sref" / "bin" / "k8sref"
GO_PROVIDERS = ["aesgcm", "aescbc", "secretbox", "kmsv1", "kmsv2-seed", "kmsv2"]


def go_bench(provider, size, seconds):
    out = subprocess.run(
        [str(K8SREF), "bench", "--provider", provider, "--size", str(size),
         "--seconds", str(seconds)],
        check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    return result["encrypt_ns_per_op"], result["decrypt_ns_per_op"]


def cargo_bench(bench, filter_regex, aws_lc, extra=()):
    cmd = ["cargo", "bench", "--quiet", "--bench", bench]
    if aws_lc:
        cmd += ["--features", "aws-lc"]
    cmd += ["--", filter_regex, *extra]
    subprocess.run(cmd, check=True, cwd=ROOT, env=bench_env(aws_lc),
                   stdout=subprocess.DEVNULL)


def bench_env(aws_lc):
    env = dict(os.environ)
    if aws_lc:
        # Separate build and criterion results for the feature build.
        env["CARGO_TARGET_DIR"] = str(ROOT / "target" / "aws-lc")
    return env


def criterion_medians(aws_lc):
    target = Path(bench_env(aws_lc).get("CARGO_TARGET_DIR", ROOT / "target"))
    medians = {}
    for meta in (target / "criterion").glob("**/new/benchmark.json"):
        full_id = json.loads(meta.read_text())["full_id"]
        estimates = json.loads((meta.parent / "estimates.json").read_text())
        medians[full_id] = estimates["median"]["point_estimate"]
    return medians


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aws-lc", action="store_true", help="build with the aws-lc feature")
    parser.add_argument("--go-runs", type=int, default=3)
    parser.add_argument("--go-seconds", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON lines")
    args = parser.parse_args()
    if not K8SREF.exists():
        sys.exit(f"{K8SREF} is missing: run its build.sh first")

    # Ours and Go's, interleaved so that a noisy neighbour hits both alike.
    ours = [
        ("providers", r"^(aesgcm|aescbc|secretbox|identity)/(en|de)crypt/(1024|65536)$|^raw/"),
        ("kms", r"/1024$"),
        ("providers", r"^threads/"),
    ]
    go = {p: ([], []) for p in GO_PROVIDERS}
    for run in range(max(args.go_runs, len(ours))):
        if run < args.go_runs:
            for provider in GO_PROVIDERS:
                enc, dec = go_bench(provider, 1024, args.go_seconds)
                go[provider][0].append(enc)
                go[provider][1].append(dec)
        if run < len(ours):
            bench, regex = ours[run]
            print(f"criterion: {bench} {regex}", file=sys.stderr)
            cargo_bench(bench, regex, args.aws_lc)
    go = {p: (statistics.median(e), statistics.median(d)) for p, (e, d) in go.items()}
    rs = criterion_medians(args.aws_lc)

    rows = []

    def row(target, ours_id, ours_ns, ref_name, ref_ns, limit, kind="max"):
        ratio = ours_ns / ref_ns
        met = ratio <= limit if kind == "max" else ratio >= limit
        rows.append({"target": target, "ours": ours_id, "ours_ns": round(ours_ns, 1),
                     "reference": ref_name, "reference_ns": round(ref_ns, 1),
                     "ratio": round(ratio, 3), "limit": f"{'<=' if kind == 'max' else '>='} {limit}",
                     "met": met})

    def r(full_id):
        return rs[full_id]

    backend = "aws-lc" if args.aws_lc else "default"
    if not args.aws_lc:
        for provider, op, idx, limit in [
            ("aesgcm", "encrypt", 0, 0.4), ("aesgcm", "decrypt", 1, 1.1),
            ("aescbc", "encrypt", 0, 0.5), ("aescbc", "decrypt", 1, 0.5),
            ("secretbox", "encrypt", 0, 1.0), ("secretbox", "decrypt", 1, 1.0),
        ]:
            row(f"{provider} {op} vs Go", f"{provider}/{op}/1024", r(f"{provider}/{op}/1024"),
                f"go {provider}", go[provider][idx], limit)
    for op, idx in [("encrypt", 0), ("decrypt", 1)]:
        row(f"kms v2 (seed) {op} vs Go (seed)", f"kms_v2/kmsv2-seed/{op}/1024",
            r(f"kms_v2/kmsv2-seed/{op}/1024"), "go kmsv2-seed", go["kmsv2-seed"][idx],
            0.2 if not args.aws_lc else 0.2)
        row(f"kms v2 (AES_GCM_KEY) {op} vs Go", f"kms_v2/kmsv2-key/{op}/1024",
            r(f"kms_v2/kmsv2-key/{op}/1024"), "go kmsv2", go["kmsv2"][idx], 0.2)
        row(f"kms v1 {op} vs Go", f"kms_v1/kmsv1/{op}/1024", r(f"kms_v1/kmsv1/{op}/1024"),
            "go kmsv1", go["kmsv1"][idx], 1.0)
        row(f"kms v2 (seed) {op} vs aesgcm", f"kms_v2/kmsv2-seed/{op}/1024",
            r(f"kms_v2/kmsv2-seed/{op}/1024"), "kms_v2/aesgcm",
            r(f"kms_v2/aesgcm/{op}/1024"), 1.5)
        row(f"kms v2 (AES_GCM_KEY) {op} vs aesgcm", f"kms_v2/kmsv2-key/{op}/1024",
            r(f"kms_v2/kmsv2-key/{op}/1024"), "kms_v2/aesgcm",
            r(f"kms_v2/aesgcm/{op}/1024"), 1.5)
    if args.aws_lc:
        for op, raw_op, idx in [("encrypt", "seal", 0), ("decrypt", "open", 1)]:
            row(f"aesgcm {op} vs raw aws-lc {raw_op}, 1 KiB", f"aesgcm/{op}/1024",
                r(f"aesgcm/{op}/1024"), f"raw/aws-lc-aes256gcm/{raw_op}/1024",
                r(f"raw/aws-lc-aes256gcm/{raw_op}/1024"), 1.15)
            # Throughput at 64 KiB: ours / raw, in bytes per second.
            ours_ns = r(f"aesgcm/{op}/65536")
            raw_ns = r(f"raw/aws-lc-aes256gcm/{raw_op}/65536")
            rows.append({"target": f"aesgcm {op} throughput vs raw aws-lc {raw_op}, 64 KiB",
                         "ours": f"aesgcm/{op}/65536", "ours_ns": round(ours_ns, 1),
                         "reference": f"raw/aws-lc-aes256gcm/{raw_op}/65536",
                         "reference_ns": round(raw_ns, 1),
                         "ratio": round(raw_ns / ours_ns, 3), "limit": ">= 0.85",
                         "met": raw_ns / ours_ns >= 0.85})
            row(f"aesgcm {op} vs Go", f"aesgcm/{op}/1024", r(f"aesgcm/{op}/1024"),
                "go aesgcm", go["aesgcm"][idx], 0.5)
    for provider in ["identity", "aescbc", "aesgcm", "secretbox"]:
        for op in ["encrypt", "decrypt"]:
            one = r(f"threads/{provider}/{op}/1")
            two = r(f"threads/{provider}/{op}/2")
            # Time per element: one call on each thread; throughput ratio
            # is (2 calls / two) / (1 call / one).
            scaling = 2 * one / two
            rows.append({"target": f"{provider} {op}: 2 threads vs 1", "ours": f"threads/{provider}/{op}/2",
                         "ours_ns": round(two, 1), "reference": f"threads/{provider}/{op}/1",
                         "reference_ns": round(one, 1), "ratio": round(scaling, 3),
                         "limit": ">= 1.8", "met": scaling >= 1.8})

    if args.json:
        for item in rows:
            print(json.dumps({"build": backend, **item}))
        return
    print(f"build: {backend}; Go medians of {args.go_runs} runs; ours criterion medians (ns/op)")
    width = max(len(x["target"]) for x in rows)
    for x in rows:
        mark = "met" if x["met"] else "NOT MET"
        print(f"{x['target']:<{width}}  ours {x['ours_ns']:>10.1f}  ref {x['reference_ns']:>10.1f}"
              f"  ratio {x['ratio']:>6.3f} ({x['limit']})  {mark}")


if __name__ == "__main__":
    main()
