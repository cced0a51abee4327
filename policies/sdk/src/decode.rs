//! The `validate` payload decoded in one pass, `object` and `oldObject` only as far as the
//! policy's projection asks, and only when the policy reads them: the objects are most of the
//! bytes, so they are read once, straight into their projected form, or merely checked to be
//! JSON when the policy will not look at them (a DELETE a guard allows at once).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::projection::Projection;
use crate::request::{AdmissionRequest, Operation, ValidationRequest};

/// How a policy reads `object` and `oldObject`: [`crate::Policy::OBJECT_FIELDS`] and
/// [`crate::Policy::reads_objects`].
pub(crate) struct ObjectReading<'a> {
    /// The projected fields; `None`: the whole objects.
    pub projection: Option<Projection<'a>>,
    /// Whether the objects of a request with this operation and subresource are read at all.
    pub reads: fn(Operation, &str) -> bool,
}

impl ObjectReading<'_> {
    /// The whole objects, always.
    #[cfg(test)]
    pub const WHOLE: ObjectReading<'static> = ObjectReading {
        projection: None,
        reads: |_, _| true,
    };
}

/// Decodes `{"request": AdmissionRequest, "settings": S}`, the objects as `reading` says.
pub(crate) fn validation_request<S: DeserializeOwned + Default>(
    payload: &[u8],
    reading: &ObjectReading<'_>,
) -> Result<ValidationRequest<S>, serde_json::Error> {
    // Checked as UTF-8 once, in one tight pass: read from bytes, serde_json would check every
    // string it meets on its own, which in the guest costs more than the whole payload's check.
    let text = std::str::from_utf8(payload).map_err(|e| {
        <serde_json::Error as de::Error>::custom(format!("the payload is not UTF-8: {e}"))
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let request = PayloadSeed {
        reading,
        settings: PhantomData,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(request)
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum PayloadField {
    Request,
    Settings,
    #[serde(other)]
    Other,
}

struct PayloadSeed<'p, S> {
    reading: &'p ObjectReading<'p>,
    settings: PhantomData<S>,
}

impl<'de, S: DeserializeOwned + Default> DeserializeSeed<'de> for PayloadSeed<'_, S> {
    type Value = ValidationRequest<S>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, S: DeserializeOwned + Default> Visitor<'de> for PayloadSeed<'_, S> {
    type Value = ValidationRequest<S>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a validation request: {\"request\": ..., \"settings\": ...}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut request, mut settings) = (None, None);
        while let Some(field) = map.next_key::<PayloadField>()? {
            match field {
                PayloadField::Request => {
                    request = Some(map.next_value_seed(RequestSeed(self.reading))?);
                }
                PayloadField::Settings => {
                    settings = Some(map.next_value::<Option<S>>()?.unwrap_or_default());
                }
                PayloadField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ValidationRequest {
            request: request.ok_or_else(|| de::Error::missing_field("request"))?,
            settings: settings.unwrap_or_default(),
        })
    }
}

/// An AdmissionRequest: the objects through the projection, every other field straight into its
/// type (no intermediate `Value`: the head is small, but building and re-reading a map of it cost
/// as much as the projected objects).
struct RequestSeed<'p>(&'p ObjectReading<'p>);

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = AdmissionRequest;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// The fields of [`AdmissionRequest`], as the API server names them.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum RequestField {
    Uid,
    Kind,
    Resource,
    SubResource,
    RequestKind,
    RequestResource,
    RequestSubResource,
    Name,
    Namespace,
    Operation,
    UserInfo,
    Object,
    OldObject,
    DryRun,
    Options,
    #[serde(other)]
    Other,
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = AdmissionRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AdmissionRequest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // As the derived `Deserialize` of `AdmissionRequest` reads it: `uid` and `operation`
        // required, `null` only where the field is an `Option` (or `options`, a `Value`).
        let mut uid = None;
        let mut operation = None;
        let mut request = AdmissionRequest::default();
        let project = || self.0.projection.as_ref();
        // The text of `object` and `oldObject` when they were skipped: the API server sends
        // `operation` and `subResource` first, but a field that came later could still ask for
        // them. An object before the operation (keys sorted, as `serde_json::Value` writes them)
        // is decoded at once: skipping it and decoding it later would read it twice.
        let (mut object_text, mut old_object_text): (Option<&'de RawValue>, _) = (None, None);
        while let Some(field) = map.next_key::<RequestField>()? {
            // `Some(false)`: the policy will not read the objects of this request; `None`: not known yet.
            let reads_now = |operation: Option<Operation>, request: &AdmissionRequest| {
                operation.map(|operation| (self.0.reads)(operation, request.sub_resource()))
            };
            match field {
                RequestField::Uid => uid = Some(map.next_value()?),
                RequestField::Kind => request.kind = map.next_value()?,
                RequestField::Resource => request.resource = map.next_value()?,
                RequestField::SubResource => request.sub_resource = map.next_value()?,
                RequestField::RequestKind => request.request_kind = map.next_value()?,
                RequestField::RequestResource => request.request_resource = map.next_value()?,
                RequestField::RequestSubResource => {
                    request.request_sub_resource = map.next_value()?
                }
                RequestField::Name => request.name = map.next_value()?,
                RequestField::Namespace => request.namespace = map.next_value()?,
                RequestField::Operation => operation = Some(map.next_value()?),
                RequestField::UserInfo => request.user_info = map.next_value()?,
                RequestField::Object => match reads_now(operation, &request) {
                    Some(false) => object_text = Some(map.next_value()?),
                    _ => request.object = map.next_value_seed(ObjectSeed(project()))?,
                },
                RequestField::OldObject => match reads_now(operation, &request) {
                    Some(false) => old_object_text = Some(map.next_value()?),
                    _ => request.old_object = map.next_value_seed(ObjectSeed(project()))?,
                },
                RequestField::DryRun => request.dry_run = map.next_value()?,
                RequestField::Options => request.options = map.next_value()?,
                RequestField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        request.uid = uid.ok_or_else(|| de::Error::missing_field("uid"))?;
        request.operation = operation.ok_or_else(|| de::Error::missing_field("operation"))?;
        if (self.0.reads)(request.operation, request.sub_resource()) {
            for (slot, text) in [
                (&mut request.object, object_text),
                (&mut request.old_object, old_object_text),
            ] {
                if let Some(text) = text {
                    let mut deserializer = serde_json::Deserializer::from_str(text.get());
                    *slot = ObjectSeed(project())
                        .deserialize(&mut deserializer)
                        .map_err(de::Error::custom)?;
                }
            }
        } else {
            // Decoded before a later field said they are not read: the policy sees them as it
            // would have in any order.
            request.object = Value::Null;
            request.old_object = Value::Null;
        }
        Ok(request)
    }
}

struct ObjectSeed<'p>(Option<&'p Projection<'p>>);

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.0 {
            Some(projection) => projection.deserialize(deserializer),
            None => Value::deserialize(deserializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    /// What the derived `Deserialize` of [`ValidationRequest`] makes of `payload`.
    fn derived(payload: &[u8]) -> Result<ValidationRequest<Value>, String> {
        serde_json::from_slice(payload).map_err(|e| e.to_string())
    }

    fn one_pass(payload: &[u8]) -> Result<ValidationRequest<Value>, String> {
        validation_request(payload, &ObjectReading::WHOLE).map_err(|e| e.to_string())
    }

    #[test]
    fn every_admission_fixture_decodes_as_the_derived_deserialize_does() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/admission");
        let mut checked = 0;
        for dir in std::fs::read_dir(&root).expect("the admission fixtures") {
            let dir = dir.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(dir).unwrap() {
                let path = file.unwrap().path();
                let Ok(review) = serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap())
                else {
                    continue; // the deliberately truncated one
                };
                let Some(request) = review.get("request") else {
                    continue;
                };
                let payload =
                    serde_json::to_vec(&json!({"request": request, "settings": {"a": [1]}}))
                        .unwrap();
                assert_eq!(one_pass(&payload), derived(&payload), "{}", path.display());
                assert!(one_pass(&payload).is_ok(), "{}", path.display());
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} fixtures found");
    }

    #[test]
    fn absent_optional_fields_are_defaults_and_unknown_fields_are_skipped() {
        let payload = br#"{"request": {"uid": "u", "operation": "CONNECT", "future": {"x": [1]},
            "subResource": null, "options": null}, "unknown": 1}"#;
        let decoded = one_pass(payload).unwrap();
        assert_eq!(decoded, derived(payload).unwrap());
        assert_eq!(decoded.request.operation, Operation::Connect);
        assert_eq!(decoded.request.sub_resource, None);
        assert!(decoded.request.object.is_null() && decoded.settings.is_null());
    }

    /// Reads the objects of a CREATE, and of any `ephemeralcontainers` request.
    fn create_or_ephemeral(operation: Operation, sub_resource: &str) -> bool {
        operation == Operation::Create || sub_resource == "ephemeralcontainers"
    }

    #[test]
    fn objects_a_policy_does_not_read_are_skipped_whatever_the_order_but_still_checked() {
        let reading = ObjectReading {
            projection: Some(Projection::new(&["spec"])),
            reads: create_or_ephemeral,
        };
        let decode = |request: &str| {
            let payload = format!(r#"{{"request": {request}}}"#);
            validation_request::<Value>(payload.as_bytes(), &reading)
                .map(|r| (r.request.object, r.request.old_object))
                .map_err(|e| e.to_string())
        };
        let object = r#"{"spec": 1, "status": 2}"#;
        let cases = [
            // The API server's order: the operation before the objects.
            (
                format!(r#"{{"uid": "u", "operation": "CREATE", "object": {object}}}"#),
                (json!({"spec": 1}), json!(null)),
            ),
            (
                format!(r#"{{"uid": "u", "operation": "DELETE", "oldObject": {object}}}"#),
                (json!(null), json!(null)),
            ),
            // The operation after the objects: decided once it is known.
            (
                format!(r#"{{"object": {object}, "uid": "u", "operation": "CREATE"}}"#),
                (json!({"spec": 1}), json!(null)),
            ),
            (
                format!(r#"{{"oldObject": {object}, "uid": "u", "operation": "DELETE"}}"#),
                (json!(null), json!(null)),
            ),
            // A subresource after the objects that makes the policy read them: decoded at the end.
            (
                format!(
                    r#"{{"uid": "u", "operation": "UPDATE", "object": {object}, "oldObject": {object}, "subResource": "ephemeralcontainers"}}"#
                ),
                (json!({"spec": 1}), json!({"spec": 1})),
            ),
            (
                format!(
                    r#"{{"uid": "u", "operation": "UPDATE", "object": {object}, "subResource": "status"}}"#
                ),
                (json!(null), json!(null)),
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(decode(&request), Ok(expected), "{request}");
        }
        // Skipped, yet still JSON: a broken object is an error as it always was.
        let broken = r#"{"uid": "u", "operation": "DELETE", "oldObject": {"spec": [1,]}}"#;
        assert!(decode(broken).is_err(), "{broken}");
    }

    #[test]
    fn a_payload_that_is_not_utf8_is_an_error() {
        let payload = b"{\"request\": {\"uid\": \"u\xff\", \"operation\": \"CREATE\"}}";
        assert!(derived(payload).is_err());
        let error = one_pass(payload).unwrap_err();
        assert!(error.contains("not UTF-8"), "{error}");
    }

    #[test]
    fn a_missing_uid_or_operation_or_a_mistyped_field_is_an_error() {
        for payload in [
            &br#"{"request": {"operation": "CREATE"}}"#[..],
            br#"{"request": {"uid": "u"}}"#,
            br#"{"request": {"uid": "u", "operation": "PATCH"}}"#,
            br#"{"request": {"uid": 7, "operation": "CREATE"}}"#,
            br#"{"request": {"uid": "u", "operation": "CREATE", "dryRun": "yes"}}"#,
            br#"{"request": {"uid": "u", "operation": "CREATE", "userInfo": {"groups": "g"}}}"#,
            br#"{"settings": {}}"#,
        ] {
            let text = String::from_utf8_lossy(payload);
            assert!(one_pass(payload).is_err(), "{text}");
            assert!(derived(payload).is_err(), "{text}");
        }
    }
}
