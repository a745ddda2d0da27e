# Run by .ci/doc-examples before the transcripts of docs/rotating-a-key.md:
# 500 Secrets written with key1 into the etcd it started ($ETCDCTL_ENDPOINTS).
set -euo pipefail
for i in $(seq -w 1 500); do
  printf '{"storage_key":"/registry/secrets/default/s-%s","plaintext_b64":"%s"}\n' \
    "$i" "$(printf 'secret %s' "$i" | base64)"
done | k8s-envelope encrypt --config enc.yaml --jsonl >encrypted.jsonl
python3 - <<'PY'
import base64, json, subprocess
with open("encrypted.jsonl") as lines:
    for number, line in enumerate(lines, 1):
        value = base64.b64decode(json.loads(line)["stored_b64"])
        key = f"/registry/secrets/default/s-{number:03d}"
        subprocess.run(["etcdctl", "put", key], input=value, check=True, stdout=subprocess.DEVNULL)
PY
rm encrypted.jsonl
