//! Kubernetes objects as kube-apiserver stores them, for tests: a Secret in
//! protobuf (`k8s\0` and a `runtime.Unknown`), written by hand from the
//! wire format (field numbers of k8s.io/api/core/v1's generated.proto).

/// A Secret in `namespace` named `name` with `data`, as the apiserver
/// stores it.
pub fn secret_protobuf(namespace: &str, name: &str, data: &[(&str, &[u8])]) -> Vec<u8> {
    // ObjectMeta: name 1, namespace 3.
    let meta = [field(1, name.as_bytes()), field(3, namespace.as_bytes())].concat();
    // Secret: metadata 1, data 2 (map entries: key 1, value 2), type 3.
    let mut body = field(1, &meta);
    let mut entries: Vec<&(&str, &[u8])> = data.iter().collect();
    entries.sort_by_key(|(key, _)| *key);
    for (key, value) in entries {
        body.extend(field(
            2,
            &[field(1, key.as_bytes()), field(2, value)].concat(),
        ));
    }
    body.extend(field(3, b"Opaque"));
    // runtime.Unknown: typeMeta 1 (apiVersion 1, kind 2), raw 2.
    let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
    let mut out = b"k8s\0".to_vec();
    out.extend(field(1, &type_meta));
    out.extend(field(2, &body));
    out
}

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = u8::try_from(n & 0x7f).unwrap_or(0);
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A length-delimited field.
fn field(number: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = varint(number << 3 | 2);
    out.extend(varint(payload.len() as u64));
    out.extend_from_slice(payload);
    out
}
