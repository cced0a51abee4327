//! Just enough of the Kubernetes protobuf encoding to accept what `kubectl create configmap|secret|
//! namespace|serviceaccount` send: client-go's typed clients write those bodies as protobuf and never
//! fall back to JSON. Other kinds answer 415 as before. (A full decoder needs every type's schema;
//! these four are the ones the generators send that the simulator serves.)

use base64::Engine;
use serde_json::{Map, Value, json};

/// The envelope's magic: `k8s\0`.
const MAGIC: &[u8] = b"k8s\x00";

/// Why a protobuf request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with the `k8s\0` envelope magic.
    #[error("not a Kubernetes protobuf envelope")]
    NotAnEnvelope,
    /// A varint or a length-delimited field runs past the end of the body.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A varint of more than ten bytes.
    #[error("varint too long")]
    VarintTooLong,
    /// A wire type other than varint, 64-bit, length-delimited or 32-bit.
    #[error("unsupported wire type {0}")]
    UnsupportedWireType(u64),
    /// A string field that is not UTF-8, or a number out of its type's range.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A kind whose protobuf schema the simulator does not carry.
    #[error("protobuf bodies of {api_version}/{kind} are not supported by the simulator")]
    UnsupportedKind {
        /// The envelope's `apiVersion`.
        api_version: String,
        /// The envelope's `kind`.
        kind: String,
    },
}

type Result<T, E = ProtobufError> = std::result::Result<T, E>;

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or(ProtobufError::Truncated("varint"))?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(ProtobufError::VarintTooLong)
}

/// The fields of one message, in order.
fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (number, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?)
                    .map_err(|_| ProtobufError::Truncated("field"))?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or(ProtobufError::Truncated("field"))?;
                let bytes = &buf[pos..end];
                pos = end;
                Wire::Bytes(bytes)
            }
            1 => {
                pos += 8;
                Wire::Varint(0)
            }
            5 => {
                pos += 4;
                Wire::Varint(0)
            }
            other => return Err(ProtobufError::UnsupportedWireType(other)),
        };
        out.push((number, value));
    }
    Ok(out)
}

fn text(b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| ProtobufError::Malformed("string (not UTF-8)"))
}

/// A `map<string, string>` entry (or `map<string, bytes>`, base64-encoded as JSON carries it).
fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value)> {
    let (mut k, mut v) = (String::new(), Value::from(""));
    for (n, f) in fields(b)? {
        if let Wire::Bytes(x) = f {
            match n {
                1 => k = text(x)?,
                2 if bytes_value => {
                    v = Value::from(base64::engine::general_purpose::STANDARD.encode(x))
                }
                2 => v = Value::from(text(x)?),
                _ => {}
            }
        }
    }
    Ok((k, v))
}

fn insert_entry(obj: &mut Map<String, Value>, field: &str, entry: (String, Value)) {
    if let Value::Object(m) = obj.entry(field).or_insert_with(|| json!({})) {
        m.insert(entry.0, entry.1);
    }
}

fn push(obj: &mut Map<String, Value>, field: &str, v: Value) {
    if let Value::Array(a) = obj.entry(field).or_insert_with(|| json!([])) {
        a.push(v);
    }
}

fn object_meta(b: &[u8]) -> Result<Value> {
    let mut m = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Wire::Bytes(x)) => drop(m.insert("name".into(), Value::from(text(x)?))),
            (2, Wire::Bytes(x)) => drop(m.insert("generateName".into(), Value::from(text(x)?))),
            (3, Wire::Bytes(x)) => drop(m.insert("namespace".into(), Value::from(text(x)?))),
            (6, Wire::Bytes(x)) => drop(m.insert("resourceVersion".into(), Value::from(text(x)?))),
            (11, Wire::Bytes(x)) => insert_entry(&mut m, "labels", map_entry(x, false)?),
            (12, Wire::Bytes(x)) => insert_entry(&mut m, "annotations", map_entry(x, false)?),
            (14, Wire::Bytes(x)) => push(&mut m, "finalizers", Value::from(text(x)?)),
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

/// `SelfSubjectAccessReviewSpec.resourceAttributes`.
fn resource_attributes(b: &[u8]) -> Result<Value> {
    let names = [
        "namespace",
        "verb",
        "group",
        "version",
        "resource",
        "subresource",
        "name",
    ];
    let mut m = Map::new();
    for (n, f) in fields(b)? {
        if let (Wire::Bytes(x), Some(name)) = (
            f,
            usize::try_from(n)
                .ok()
                .and_then(|i| names.get(i.wrapping_sub(1))),
        ) {
            m.insert((*name).into(), Value::from(text(x)?));
        }
    }
    Ok(Value::Object(m))
}

fn message(kind: &str, b: &[u8]) -> Result<Value> {
    let mut o = Map::new();
    for (n, f) in fields(b)? {
        match (kind, n, f) {
            (_, 1, Wire::Bytes(x)) => drop(o.insert("metadata".into(), object_meta(x)?)),
            ("ConfigMap", 2, Wire::Bytes(x)) => insert_entry(&mut o, "data", map_entry(x, false)?),
            ("ConfigMap", 3, Wire::Bytes(x)) => {
                insert_entry(&mut o, "binaryData", map_entry(x, true)?)
            }
            ("ConfigMap", 4, Wire::Varint(v)) | ("Secret", 5, Wire::Varint(v)) => {
                drop(o.insert("immutable".into(), Value::from(v != 0)))
            }
            ("Secret", 2, Wire::Bytes(x)) => insert_entry(&mut o, "data", map_entry(x, true)?),
            ("Secret", 3, Wire::Bytes(x)) => drop(o.insert("type".into(), Value::from(text(x)?))),
            ("Secret", 4, Wire::Bytes(x)) => {
                insert_entry(&mut o, "stringData", map_entry(x, false)?)
            }
            ("ServiceAccount", 3, Wire::Bytes(x)) => {
                let name = fields(x)?
                    .into_iter()
                    .find_map(|(n, f)| match (n, f) {
                        (1, Wire::Bytes(v)) => text(v).ok(),
                        _ => None,
                    })
                    .unwrap_or_default();
                push(&mut o, "imagePullSecrets", json!({"name": name}));
            }
            ("SelfSubjectAccessReview", 2, Wire::Bytes(x)) => {
                let mut spec = Map::new();
                for (n, f) in fields(x)? {
                    if let (1, Wire::Bytes(ra)) = (n, f) {
                        spec.insert("resourceAttributes".into(), resource_attributes(ra)?);
                    }
                }
                o.insert("spec".into(), Value::Object(spec));
            }
            ("ServiceAccount", 4, Wire::Varint(v)) => {
                drop(o.insert("automountServiceAccountToken".into(), Value::from(v != 0)))
            }
            // TokenRequestSpec: audiences (1), expirationSeconds (4).
            ("TokenRequest", 2, Wire::Bytes(x)) => {
                let mut spec = Map::new();
                for (n, f) in fields(x)? {
                    match (n, f) {
                        (1, Wire::Bytes(a)) => push(&mut spec, "audiences", Value::from(text(a)?)),
                        (4, Wire::Varint(v)) => {
                            drop(spec.insert("expirationSeconds".into(), Value::from(v)))
                        }
                        _ => {}
                    }
                }
                o.insert("spec".into(), Value::Object(spec));
            }
            // CertificateSigningRequestStatus: conditions (1); what `kubectl certificate approve|deny`
            // writes to `/approval`.
            ("CertificateSigningRequest", 3, Wire::Bytes(x)) => {
                let mut status = Map::new();
                for (n, f) in fields(x)? {
                    if let (1, Wire::Bytes(c)) = (n, f) {
                        push(&mut status, "conditions", csr_condition(c)?);
                    }
                }
                o.insert("status".into(), Value::Object(status));
            }
            _ => {}
        }
    }
    Ok(Value::Object(o))
}

/// A `meta/v1.Time` (seconds (1), nanos (2)) as RFC 3339.
fn time(b: &[u8]) -> Result<Value> {
    let mut seconds = 0i64;
    for (n, f) in fields(b)? {
        if let (1, Wire::Varint(v)) = (n, f) {
            seconds = i64::try_from(v).map_err(|_| ProtobufError::Malformed("time"))?;
        }
    }
    Ok(jiff::Timestamp::from_second(seconds)
        .map(|t| Value::from(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
        .unwrap_or(Value::Null))
}

/// A CertificateSigningRequestCondition: type (1), reason (2), message (3), lastUpdateTime (4),
/// lastTransitionTime (5), status (6).
fn csr_condition(b: &[u8]) -> Result<Value> {
    let mut c = Map::new();
    for (n, f) in fields(b)? {
        let (key, value) = match (n, f) {
            (1, Wire::Bytes(x)) => ("type", Value::from(text(x)?)),
            (2, Wire::Bytes(x)) => ("reason", Value::from(text(x)?)),
            (3, Wire::Bytes(x)) => ("message", Value::from(text(x)?)),
            (4, Wire::Bytes(x)) => ("lastUpdateTime", time(x)?),
            (5, Wire::Bytes(x)) => ("lastTransitionTime", time(x)?),
            (6, Wire::Bytes(x)) => ("status", Value::from(text(x)?)),
            _ => continue,
        };
        c.insert(key.into(), value);
    }
    Ok(Value::Object(c))
}

/// Decodes a protobuf request body into the JSON object it stands for.
///
/// # Errors
/// [`ProtobufError`] when the body is not a well-formed envelope of a supported kind.
pub fn decode(body: &[u8]) -> Result<Value> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::NotAnEnvelope)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(rest)? {
        match (n, f) {
            (1, Wire::Bytes(tm)) => {
                for (n, f) in fields(tm)? {
                    match (n, f) {
                        (1, Wire::Bytes(x)) => api_version = text(x)?,
                        (2, Wire::Bytes(x)) => kind = text(x)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    let supported = matches!(
        (api_version.as_str(), kind.as_str()),
        (
            "v1",
            "ConfigMap" | "Secret" | "Namespace" | "ServiceAccount"
        ) | ("authorization.k8s.io/v1", "SelfSubjectAccessReview")
            | (
                "authentication.k8s.io/v1",
                "SelfSubjectReview" | "TokenRequest"
            )
            | ("certificates.k8s.io/v1", "CertificateSigningRequest")
    );
    if !supported {
        return Err(ProtobufError::UnsupportedKind { api_version, kind });
    }
    let mut object = message(&kind, raw)?;
    object["apiVersion"] = Value::from(api_version);
    object["kind"] = Value::from(kind);
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
        out.push((number << 3) | 2);
        out.push(u8::try_from(bytes.len()).unwrap());
        out.extend_from_slice(bytes);
    }

    #[test]
    fn decodes_a_configmap_and_a_secret() {
        let mut meta = Vec::new();
        field(&mut meta, 1, b"cm");
        let mut label = Vec::new();
        field(&mut label, 1, b"a");
        field(&mut label, 2, b"b");
        field(&mut meta, 11, &label);
        let mut data = Vec::new();
        field(&mut data, 1, b"k");
        field(&mut data, 2, b"v");
        let mut cm = Vec::new();
        field(&mut cm, 1, &meta);
        field(&mut cm, 2, &data);
        for (kind, want_data) in [
            ("ConfigMap", json!({"k": "v"})),
            ("Secret", json!({"k": "dg=="})),
        ] {
            let mut tm = Vec::new();
            field(&mut tm, 1, b"v1");
            field(&mut tm, 2, kind.as_bytes());
            let mut env = MAGIC.to_vec();
            field(&mut env, 1, &tm);
            field(&mut env, 2, &cm);
            let v = decode(&env).unwrap();
            assert_eq!(v["kind"], kind);
            assert_eq!(v["metadata"], json!({"name": "cm", "labels": {"a": "b"}}));
            assert_eq!(v["data"], want_data);
        }
        assert!(decode(b"k8s\x00\x0a").is_err());
        assert!(decode(b"{}").is_err());
    }
}
