//! Decoding an object without its `metadata.managedFields`.
//!
//! The API server sends every object with its managedFields: an entry per field manager, each holding a
//! `fieldsV1` trie of the fields that manager owns, which k8s-openapi decodes into a `serde_json::Value`
//! tree. No rule reads them, and building them was a large part of decoding a review.
//! [`WithoutManagedFields`] decodes a k8s-openapi object through a thin wrapper around any serde
//! deserializer. The wrapper only gives the `managedFields` key of the object's own `ObjectMeta` another
//! name, one no k8s-openapi type knows, so the type skips the value as it skips any unknown field (serde's
//! `IgnoredAny`: read, never built). Everything else, the pod template's metadata included, decodes as
//! it always did.
//! See <https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management>.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

/// The key skipped.
const MANAGED_FIELDS: &str = "managedFields";
/// What the key is called instead: a name no k8s-openapi `ObjectMeta` field has.
const SKIPPED: &str = "managedFields (not read by volguard)";
/// The type name k8s-openapi passes to `deserialize_struct` for metadata.
const OBJECT_META: &str = "ObjectMeta";

/// A k8s-openapi object decoded with `metadata.managedFields` left as `None`, whatever the input holds
/// there.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WithoutManagedFields<K>(pub K);

impl<'de, K: de::Deserialize<'de>> de::Deserialize<'de> for WithoutManagedFields<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::deserialize(Object(deserializer)).map(Self)
    }
}

/// Forwards the `Deserializer` methods not listed to the wrapped deserializer, unchanged.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method($($arg,)* visitor)
            }
        )*
    };
}

/// The methods every wrapper below forwards as they are.
macro_rules! forward_common {
    () => {
        forward! {
            deserialize_bool(); deserialize_i8(); deserialize_i16(); deserialize_i32(); deserialize_i64();
            deserialize_i128(); deserialize_u8(); deserialize_u16(); deserialize_u32(); deserialize_u64();
            deserialize_u128(); deserialize_f32(); deserialize_f64(); deserialize_char();
            deserialize_bytes(); deserialize_byte_buf(); deserialize_unit();
            deserialize_unit_struct(name: &'static str); deserialize_newtype_struct(name: &'static str);
            deserialize_seq(); deserialize_tuple(len: usize);
            deserialize_tuple_struct(name: &'static str, len: usize);
            deserialize_enum(name: &'static str, variants: &'static [&'static str]);
            deserialize_ignored_any();
        }

        fn is_human_readable(&self) -> bool {
            self.0.is_human_readable()
        }
    };
}

/// The object itself: its fields' values are read through [`Member`].
struct Object<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Object<D> {
    type Error = D::Error;

    forward_common!();
    forward! {
        deserialize_any(); deserialize_str(); deserialize_string(); deserialize_option();
        deserialize_identifier();
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(Fields(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_struct(name, fields, Fields(visitor))
    }
}

/// The object's visitor, handed the object's fields with their values wrapped in [`Member`].
struct Fields<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Fields<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(FieldValues(map))
    }
}

struct FieldValues<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FieldValues<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(MemberSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct MemberSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for MemberSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Member(deserializer))
    }
}

/// A field of the object. Only an `ObjectMeta` (the object's `metadata`, possibly optional) is read
/// differently; any other value goes straight to the wrapped deserializer.
struct Member<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Member<D> {
    type Error = D::Error;

    forward_common!();
    forward! {
        deserialize_any(); deserialize_str(); deserialize_string(); deserialize_identifier();
        deserialize_map();
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        // `Option<ObjectMeta>`: the present value is read through this wrapper too.
        self.0.deserialize_option(Optional(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if name == OBJECT_META {
            self.0.deserialize_struct(name, fields, Metadata(visitor))
        } else {
            self.0.deserialize_struct(name, fields, visitor)
        }
    }
}

struct Optional<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Optional<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Member(deserializer))
    }
}

/// The `ObjectMeta` visitor, handed the metadata's keys through [`Key`].
struct Metadata<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Metadata<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(MetadataKeys(map))
    }
}

struct MetadataKeys<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for MetadataKeys<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(KeySeed(seed))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct KeySeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Key(deserializer))
    }
}

/// A metadata key, renamed when it is `managedFields`.
struct Key<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Key<D> {
    type Error = D::Error;

    forward_common!();
    forward! {
        deserialize_option(); deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_any(Rename(visitor))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_str(Rename(visitor))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_string(Rename(visitor))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_identifier(Rename(visitor))
    }
}

struct Rename<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Rename<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.0.visit_str(if v == MANAGED_FIELDS { SKIPPED } else { v })
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.0
            .visit_borrowed_str(if v == MANAGED_FIELDS { SKIPPED } else { v })
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        if v == MANAGED_FIELDS {
            self.0.visit_borrowed_str(SKIPPED)
        } else {
            self.0.visit_string(v)
        }
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        self.0.visit_bytes(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        self.0.visit_borrowed_bytes(v)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        self.0.visit_byte_buf(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.0.visit_u64(v)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    use super::*;

    fn deployment() -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "labels": {"app": "web"},
                "managedFields": [{"manager": "kubectl", "operation": "Update",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
                "annotations": {"a": "b"}
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}
            }
        })
    }

    #[test]
    fn managed_fields_are_skipped_and_everything_else_decodes() {
        let value = deployment();
        let WithoutManagedFields(got) =
            serde_json::from_str::<WithoutManagedFields<Deployment>>(&value.to_string()).unwrap();
        let mut want: Deployment = serde_json::from_value(value).unwrap();
        assert!(want.metadata.managed_fields.is_some());
        want.metadata.managed_fields = None;
        assert_eq!(got, want);
    }

    #[test]
    fn managed_fields_that_would_not_decode_are_not_read() {
        let mut value = deployment();
        value["metadata"]["managedFields"] = json!("not a list");
        assert!(serde_json::from_value::<Deployment>(value.clone()).is_err());
        let WithoutManagedFields(got) =
            serde_json::from_value::<WithoutManagedFields<Deployment>>(value).unwrap();
        assert_eq!(got.metadata.name.as_deref(), Some("web"));
        assert_eq!(got.spec.and_then(|s| s.replicas), Some(3));
    }

    #[test]
    fn yaml_decodes_the_same_way() {
        let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  managedFields:\n  - manager: \
                    kubectl\n    fieldsV1: {f:spec: {}}\nspec:\n  replicas: 2\n  selector: {}\n  template: {}\n";
        let WithoutManagedFields(got) =
            serde_saphyr::from_str::<WithoutManagedFields<Deployment>>(yaml).unwrap();
        assert_eq!(got.metadata.name.as_deref(), Some("web"));
        assert_eq!(got.metadata.managed_fields, None);
        assert_eq!(got.spec.and_then(|s| s.replicas), Some(2));
    }

    #[test]
    fn errors_elsewhere_are_reported_as_before() {
        let mut value = deployment();
        value["spec"]["replicas"] = json!("three");
        let plain = serde_json::from_value::<Deployment>(value.clone()).unwrap_err();
        let skipping = serde_json::from_value::<WithoutManagedFields<Deployment>>(value).unwrap_err();
        assert_eq!(skipping.to_string(), plain.to_string());
    }

    #[test]
    fn an_object_without_metadata_or_with_null_metadata_decodes() {
        for metadata in [None, Some(serde_json::Value::Null)] {
            let mut value = deployment();
            let map = value.as_object_mut().unwrap();
            map.remove("metadata");
            if let Some(m) = metadata {
                map.insert("metadata".into(), m);
            }
            let WithoutManagedFields(got) =
                serde_json::from_value::<WithoutManagedFields<Deployment>>(value).unwrap();
            assert_eq!(got.metadata, Default::default());
        }
    }
}
