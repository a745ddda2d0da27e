# Run by .ci/doc-examples before the transcripts of
# docs/recovering-from-a-backup.md, in the etcd it started
# ($ETCDCTL_ENDPOINTS): the live cluster of "An object that cannot be
# decrypted". Two Secrets re-encrypted with key2 (enc.2-promote.yaml), one
# still written with key1 (enc.yaml), as a re-encryption left it when key1
# was dropped too early.
set -euo pipefail
put() {
  local config=$1 namespace=$2 name=$3 object
  object=$(printf '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"%s","namespace":"%s"},"data":{"token":"dGVzdA=="}}' "$name" "$namespace")
  printf '{"storage_key":"/registry/secrets/%s/%s","plaintext_b64":"%s"}\n' \
    "$namespace" "$name" "$(printf '%s' "$object" | base64 -w0)" |
    k8s-envelope encrypt --config "$config" --jsonl |
    python3 -c 'import base64, json, sys; sys.stdout.buffer.write(base64.b64decode(json.load(sys.stdin)["stored_b64"]))' |
    etcdctl put "/registry/secrets/$namespace/$name" >/dev/null
}
put enc.yaml default registry-token
put enc.2-promote.yaml prod api-token
put enc.2-promote.yaml prod db-password
