//! The `validate` payload decoded in one pass, `object` and `oldObject` only as far as the
//! policy's projection asks: the objects are most of the bytes, so they are read once, straight
//! into their projected form.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::projection::Projection;
use crate::request::{AdmissionRequest, ValidationRequest};

/// Decodes `{"request": AdmissionRequest, "settings": S}`; `projection: None` keeps the whole objects.
pub(crate) fn validation_request<S: DeserializeOwned + Default>(
    payload: &[u8],
    projection: Option<&Projection<'_>>,
) -> Result<ValidationRequest<S>, serde_json::Error> {
    // Checked as UTF-8 once, in one tight pass: read from bytes, serde_json would check every
    // string it meets on its own, which in the guest costs more than the whole payload's check.
    let text = std::str::from_utf8(payload).map_err(|e| {
        <serde_json::Error as de::Error>::custom(format!("the payload is not UTF-8: {e}"))
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let request = PayloadSeed {
        projection,
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
    projection: Option<&'p Projection<'p>>,
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
                    request = Some(map.next_value_seed(RequestSeed(self.projection))?);
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
struct RequestSeed<'p>(Option<&'p Projection<'p>>);

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
        while let Some(field) = map.next_key::<RequestField>()? {
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
                RequestField::Object => request.object = map.next_value_seed(ObjectSeed(self.0))?,
                RequestField::OldObject => {
                    request.old_object = map.next_value_seed(ObjectSeed(self.0))?
                }
                RequestField::DryRun => request.dry_run = map.next_value()?,
                RequestField::Options => request.options = map.next_value()?,
                RequestField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        request.uid = uid.ok_or_else(|| de::Error::missing_field("uid"))?;
        request.operation = operation.ok_or_else(|| de::Error::missing_field("operation"))?;
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
        validation_request(payload, None).map_err(|e| e.to_string())
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
        assert_eq!(
            decoded.request.operation,
            crate::request::Operation::Connect
        );
        assert_eq!(decoded.request.sub_resource, None);
        assert!(decoded.request.object.is_null() && decoded.settings.is_null());
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
