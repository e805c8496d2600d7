//! The review's `request`, read in one pass: kube's `AdmissionRequest` for every field but the objects,
//! which are decoded straight into their k8s-openapi type when the decoder reaches them (the API server
//! writes the request's `kind` first), or kept as raw JSON until `kind` has been read.

use std::fmt;

use k8s_openapi::api::authentication::v1::UserInfo;
use kube::core::admission::{AdmissionRequest, Operation};
use kube::core::{DynamicObject, GroupVersionKind, GroupVersionResource, TypeMeta};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::domain::workload::{ObjectType, Resource, WorkloadKind};

/// The review's `request`: kube's `AdmissionRequest` for everything but the objects, which are typed.
pub(super) struct Request {
    /// Every field of the request, with `object` and `oldObject` left `None` (they are below), and
    /// `options`, `userInfo`, `requestKind` and `requestResource` checked to be there (where required)
    /// but not built: nothing reads them, and the user's groups and extra were a good part of a small
    /// review's decoding. Boxed: kube's request is about 2 KB (three `Option<DynamicObject>`s among
    /// its fields), and every layer serde returns it through (this visitor, the review's, serde_json's
    /// `from_str`) would copy it again.
    pub(super) head: Box<AdmissionRequest<DynamicObject>>,
    pub(super) object: Option<Box<Resource>>,
    pub(super) old_object: Option<Box<Resource>>,
}

/// The request's fields, as kube's `AdmissionRequest` names them.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
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
    #[serde(other)]
    Other,
}

/// An object field as read: decoded, or (when it came before the request's `kind`) its JSON text, to decode
/// once `kind` is known.
enum Slot {
    Decoded(Option<Box<Resource>>),
    Raw(Option<Box<RawValue>>),
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RequestVisitor)
    }
}

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = Request;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct AdmissionRequest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
        let mut uid: Option<String> = None;
        let mut kind: Option<GroupVersionKind> = None;
        let mut resource: Option<GroupVersionResource> = None;
        let mut sub_resource: Option<Option<String>> = None;
        let mut request_kind: Option<IgnoredAny> = None;
        let mut request_resource: Option<IgnoredAny> = None;
        let mut request_sub_resource: Option<Option<String>> = None;
        let mut name: Option<String> = None;
        let mut namespace: Option<Option<String>> = None;
        let mut operation: Option<Operation> = None;
        let mut user_info: Option<IgnoredAny> = None;
        let mut object: Option<Slot> = None;
        let mut old_object: Option<Slot> = None;
        let mut dry_run: Option<bool> = None;
        // Each field once, as serde's derive (and so kube's AdmissionRequest) requires.
        macro_rules! read_once {
            ($slot:ident, $name:literal, $value:expr) => {{
                if $slot.is_some() {
                    return Err(de::Error::duplicate_field($name));
                }
                $slot = Some($value);
            }};
        }
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Uid => read_once!(uid, "uid", map.next_value()?),
                Field::Kind => read_once!(kind, "kind", map.next_value()?),
                Field::Resource => read_once!(resource, "resource", map.next_value()?),
                Field::SubResource => read_once!(sub_resource, "subResource", map.next_value()?),
                Field::RequestKind => read_once!(request_kind, "requestKind", map.next_value()?),
                Field::RequestResource => read_once!(request_resource, "requestResource", map.next_value()?),
                Field::RequestSubResource => {
                    read_once!(request_sub_resource, "requestSubResource", map.next_value()?)
                }
                Field::Name => read_once!(name, "name", map.next_value()?),
                Field::Namespace => read_once!(namespace, "namespace", map.next_value()?),
                Field::Operation => read_once!(operation, "operation", map.next_value()?),
                Field::UserInfo => read_once!(user_info, "userInfo", map.next_value()?),
                Field::Object => read_once!(object, "object", read_object(&mut map, kind.as_ref())?),
                Field::OldObject => {
                    read_once!(old_object, "oldObject", read_object(&mut map, kind.as_ref())?)
                }
                Field::DryRun => read_once!(dry_run, "dryRun", map.next_value()?),
                // `options` (CreateOptions and the like) included: accepted as any JSON, not read.
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        let resource = resource.ok_or_else(|| de::Error::missing_field("resource"))?;
        let target = ObjectSeed::for_kind(&kind);
        // On CREATE the object may omit its namespace; the request's is authoritative. A Scale's target
        // kind is the resource's (`deployments/scale`).
        let namespace = namespace.flatten();
        let scale_target = WorkloadKind::from_resource(&resource.resource);
        let finish = |slot: Option<Slot>| -> Result<Option<Box<Resource>>, A::Error> {
            let mut resource = match slot {
                None => return Ok(None),
                Some(Slot::Decoded(object)) => object,
                Some(Slot::Raw(raw)) => match raw {
                    None => None,
                    Some(raw) => target
                        .deserialize(&mut serde_json::Deserializer::from_str(raw.get()))
                        .map_err(de::Error::custom)?,
                },
            };
            if let Some(r) = &mut resource {
                if let Some(ns) = &namespace {
                    r.metadata_mut().namespace = Some(ns.clone());
                }
                if let Resource::Scale(scale) = &mut **r {
                    scale.target_kind = scale_target;
                }
            }
            Ok(resource)
        };
        let object = finish(object)?;
        let old_object = finish(old_object)?;
        let head = Box::new(AdmissionRequest {
            types: TypeMeta::default(),
            uid: uid.ok_or_else(|| de::Error::missing_field("uid"))?,
            kind,
            resource,
            sub_resource: sub_resource.flatten(),
            request_kind: None,
            request_resource: None,
            request_sub_resource: request_sub_resource.flatten(),
            name: name.unwrap_or_default(),
            namespace,
            operation: operation.ok_or_else(|| de::Error::missing_field("operation"))?,
            user_info: user_info
                .map(|_| UserInfo::default())
                .ok_or_else(|| de::Error::missing_field("userInfo"))?,
            object: None,
            old_object: None,
            dry_run: dry_run.unwrap_or_default(),
            options: None,
        });
        Ok(Request {
            head,
            object,
            old_object,
        })
    }
}

/// Reads `object` or `oldObject`: typed when the request's kind is already known, else as raw JSON.
fn read_object<'de, A: MapAccess<'de>>(
    map: &mut A,
    kind: Option<&GroupVersionKind>,
) -> Result<Slot, A::Error> {
    Ok(match kind {
        Some(kind) => Slot::Decoded(map.next_value_seed(ObjectSeed::for_kind(kind))?),
        // RawValue works with serde_json only, which is what `parse` reads with.
        None => Slot::Raw(map.next_value()?),
    })
}

/// Decodes a request's object (or `null`) as the type the request's kind names. The object of a kind
/// volguard does not read is still checked to be an object (as kube's `DynamicObject`), then dropped.
#[derive(Clone, Copy)]
pub(super) struct ObjectSeed(Option<ObjectType>);

impl ObjectSeed {
    pub(super) fn for_kind(kind: &GroupVersionKind) -> Self {
        Self(ObjectType::of(&kind.api_version(), &kind.kind))
    }

    /// The type's name, for errors.
    pub(super) fn type_name(self) -> &'static str {
        self.0.map_or("DynamicObject", ObjectType::kind)
    }
}

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Option<Box<Resource>>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed {
    // Boxed where it is decoded: a typed object is kilobytes (a Deployment 2.4 KB, each container 2 KB),
    // and every layer of the review it is returned through would copy it again.
    type Value = Option<Box<Resource>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} or null", self.type_name())
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        match self.0 {
            Some(ty) => ty.deserialize(deserializer).map(|r| Some(Box::new(r))),
            None => DynamicObject::deserialize(deserializer).map(|_| None),
        }
    }
}
