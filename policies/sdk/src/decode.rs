//! The `validate` payload decoded in one pass, `object` and `oldObject` only as far as the
//! policy's projection asks: the objects are most of the bytes, so they are read once, straight
//! into their projected form.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::projection::Projection;
use crate::request::{AdmissionRequest, ValidationRequest};

/// Decodes `{"request": AdmissionRequest, "settings": S}`; `projection: None` keeps the whole objects.
pub(crate) fn validation_request<S: DeserializeOwned + Default>(
    payload: &[u8],
    projection: Option<&Projection>,
) -> Result<ValidationRequest<S>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(payload);
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
    projection: Option<&'p Projection>,
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

/// An AdmissionRequest: the objects through the projection, the other (small) fields gathered and
/// decoded as [`AdmissionRequest`] declares them.
struct RequestSeed<'p>(Option<&'p Projection>);

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = AdmissionRequest;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = AdmissionRequest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AdmissionRequest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut object, mut old_object) = (Value::Null, Value::Null);
        let mut rest = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "object" => object = map.next_value_seed(ObjectSeed(self.0))?,
                "oldObject" => old_object = map.next_value_seed(ObjectSeed(self.0))?,
                _ => {
                    let value = map.next_value::<Value>()?;
                    rest.insert(key, value);
                }
            }
        }
        let head =
            AdmissionRequest::<()>::deserialize(Value::Object(rest)).map_err(de::Error::custom)?;
        Ok(head.with_objects(object, old_object))
    }
}

struct ObjectSeed<'p>(Option<&'p Projection>);

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.0 {
            Some(projection) => projection.deserialize(deserializer),
            None => Value::deserialize(deserializer),
        }
    }
}
