//! Decoding an object without the fields no rule reads.
//!
//! A review's object carries much that decides nothing about volumes: `managedFields` (an entry per field
//! manager, each a trie of the fields it owns), the `kubectl.kubernetes.io/last-applied-configuration`
//! annotation (the whole manifest again, as an escaped string), timestamps, and in every container its
//! image, command, env, resources and probes. Building those into k8s-openapi values was most of the cost
//! of decoding a review (issue 13).
//!
//! [`Unread`] decodes a k8s-openapi object through a thin wrapper around any serde deserializer. At every
//! depth, the wrapper gives the fields listed in [`UNREAD`] (per k8s-openapi struct, by the name the type
//! passes to `deserialize_struct`) another name, one no k8s-openapi type knows, so the type skips the
//! value as it skips any unknown field (serde's `IgnoredAny`: scanned, never built), and it leaves the
//! last-applied annotation out of `metadata.annotations`. Everything else decodes as it always did: the
//! list names fields to leave out, so a field a new rule reads is decoded unless someone adds it here.
//!
//! One decision whoever asks: `check`, `review` and `serve` all decode through this, so all judge the
//! same object. Repairs (`decision::mutate`) diff the typed object before and after, both decoded this
//! way, and apply the patch to the object as received, so the fields left out here survive a repair.
//! `src/decision/every_field.rs` decides every fixture both ways and requires the same answers. A
//! StorageClass is decoded whole (`decode.rs`): the default class is the newest, by its creationTimestamp.
//! See <https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management>.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, CowStrDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What a left-out field is called instead: a name no k8s-openapi type has a field of.
const SKIPPED: &str = "(not read by volguard)";

/// The annotation left out of `metadata.annotations`: `kubectl apply`'s copy of the whole manifest.
pub(crate) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The fields of a container no rule reads (Container and EphemeralContainer alike). Kept: `name`,
/// `volumeMounts`, `volumeDevices`, `restartPolicy` (a sidecar's).
const CONTAINER: &[&str] = &[
    "args",
    "command",
    "env",
    "envFrom",
    "image",
    "imagePullPolicy",
    "lifecycle",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resizePolicy",
    "resources",
    "securityContext",
    "startupProbe",
    "stdin",
    "stdinOnce",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "tty",
    "workingDir",
];

/// A workload's `status`: what its controller last saw, never what volguard judges.
const WORKLOAD: &[&str] = &["status"];

/// Per k8s-openapi struct, the fields no rule reads. Read by nothing in `src/domain` or `src/decision`
/// (the tests in this file and `src/decision/every_field.rs` hold it to that), but for a StorageClass's
/// creationTimestamp, which is why a StorageClass is decoded whole.
pub(crate) const UNREAD: &[(&str, &[&str])] = &[
    (
        "ObjectMeta",
        &[
            "creationTimestamp",
            "deletionGracePeriodSeconds",
            "deletionTimestamp",
            "finalizers",
            "generation",
            "managedFields",
            "resourceVersion",
            "selfLink",
        ],
    ),
    ("Container", CONTAINER),
    ("EphemeralContainer", CONTAINER),
    (
        "PodSpec",
        &[
            "activeDeadlineSeconds",
            "automountServiceAccountToken",
            "dnsConfig",
            "dnsPolicy",
            "enableServiceLinks",
            "hostAliases",
            "imagePullSecrets",
            "overhead",
            "preemptionPolicy",
            "priority",
            "priorityClassName",
            "readinessGates",
            "resourceClaims",
            "resources",
            "runtimeClassName",
            "schedulerName",
            "schedulingGates",
            "securityContext",
            "serviceAccount",
            "serviceAccountName",
            "terminationGracePeriodSeconds",
            "tolerations",
        ],
    ),
    ("Deployment", WORKLOAD),
    ("StatefulSet", WORKLOAD),
    ("DaemonSet", WORKLOAD),
    ("ReplicaSet", WORKLOAD),
    ("Job", WORKLOAD),
    ("CronJob", WORKLOAD),
    ("ReplicationController", WORKLOAD),
];

/// The fields of struct `name` left out.
fn unread_of(name: &str) -> &'static [&'static str] {
    UNREAD
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, fields)| *fields)
}

/// A k8s-openapi object decoded without the fields in [`UNREAD`] and the last-applied annotation, whatever
/// the input holds there (they are not even checked to be well-formed).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Unread<K>(pub K);

impl<'de, K: de::Deserialize<'de>> de::Deserialize<'de> for Unread<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::deserialize(Value::plain(deserializer)).map(Self)
    }
}

/// What a value is, as far as leaving fields out goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Any value: its structs' unread fields are left out.
    Plain,
    /// `metadata.annotations`: the last-applied entry is left out.
    Annotations,
}

/// Any value of the object, at any depth.
struct Value<D> {
    inner: D,
    place: Place,
}

impl<D> Value<D> {
    fn plain(inner: D) -> Self {
        Self {
            inner,
            place: Place::Plain,
        }
    }
}

/// Forwards the `Deserializer` methods named to the wrapped deserializer, unchanged.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
                self.inner.$method($($arg,)* visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Value<D> {
    type Error = D::Error;

    // Scalars, and the shapes k8s-openapi's types do not nest structs in.
    forward! {
        deserialize_bool(); deserialize_i8(); deserialize_i16(); deserialize_i32(); deserialize_i64();
        deserialize_i128(); deserialize_u8(); deserialize_u16(); deserialize_u32(); deserialize_u64();
        deserialize_u128(); deserialize_f32(); deserialize_f64(); deserialize_char(); deserialize_str();
        deserialize_string(); deserialize_bytes(); deserialize_byte_buf(); deserialize_unit();
        deserialize_unit_struct(name: &'static str); deserialize_identifier(); deserialize_ignored_any();
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_tuple(len: usize); deserialize_tuple_struct(name: &'static str, len: usize);
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_any(Nested(visitor))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_option(Optional {
            visitor,
            place: self.place,
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_newtype_struct(name, Nested(visitor))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_seq(Nested(visitor))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.place {
            Place::Annotations => self.inner.deserialize_map(Annotations(visitor)),
            Place::Plain => self.inner.deserialize_map(Nested(visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_struct(
            name,
            fields,
            Struct {
                visitor,
                unread: unread_of(name),
                metadata: name == "ObjectMeta",
            },
        )
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Forwards the scalar `Visitor` methods to the wrapped visitor, unchanged.
macro_rules! forward_scalars {
    () => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            self.inner().visit_bool(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            self.inner().visit_i64(v)
        }
        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Self::Value, E> {
            self.inner().visit_i128(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.inner().visit_u64(v)
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<Self::Value, E> {
            self.inner().visit_u128(v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            self.inner().visit_f64(v)
        }
        fn visit_char<E: de::Error>(self, v: char) -> Result<Self::Value, E> {
            self.inner().visit_char(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            self.inner().visit_str(v)
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            self.inner().visit_borrowed_str(v)
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            self.inner().visit_string(v)
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            self.inner().visit_bytes(v)
        }
        fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
            self.inner().visit_borrowed_bytes(v)
        }
        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            self.inner().visit_byte_buf(v)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            self.inner().visit_unit()
        }
        fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
            self.inner().visit_enum(data)
        }
    };
}

/// A visitor whose nested values (map values, sequence elements, a present option, a newtype's content)
/// are read through [`Value`].
struct Nested<V>(V);

impl<V> Nested<V> {
    fn inner(self) -> V {
        self.0
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Nested<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_scalars!();

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Value::plain(deserializer))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Value::plain(deserializer))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Elements(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Entries(map))
    }
}

/// `Option<T>`: the present value keeps its place.
struct Optional<V> {
    visitor: V,
    place: Place,
}

impl<V> Optional<V> {
    fn inner(self) -> V {
        self.visitor
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Optional<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    forward_scalars!();

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_some(Value {
            inner: deserializer,
            place: self.place,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_newtype_struct(Value::plain(deserializer))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_seq(Elements(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_map(Entries(map))
    }
}

/// A sequence's elements, each read through [`Value`].
struct Elements<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Elements<A> {
    type Error = A::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed, Place::Plain))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// A map's entries (a label map, a struct read as a map by `deserialize_any`), values through [`Value`].
struct Entries<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Entries<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(Seed(seed, Place::Plain))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// A seed whose value is read through [`Value`], at a place.
struct Seed<S>(S, Place);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Value {
            inner: deserializer,
            place: self.1,
        })
    }
}

/// A k8s-openapi struct's visitor: its unread fields renamed, the rest read through [`Value`].
struct Struct<V> {
    visitor: V,
    unread: &'static [&'static str],
    /// An `ObjectMeta`, whose `annotations` lose the last-applied entry.
    metadata: bool,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Struct<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_map(Fields {
            map,
            unread: self.unread,
            metadata: self.metadata,
            next: Cell::new(Place::Plain),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_seq(Elements(seq))
    }
}

/// A struct's fields: keys through [`Key`], values through [`Value`] at the place the key said.
struct Fields<A> {
    map: A,
    unread: &'static [&'static str],
    metadata: bool,
    next: Cell<Place>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Fields<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.next.set(Place::Plain);
        let names = Names {
            unread: self.unread,
            metadata: self.metadata,
            next: &self.next,
        };
        self.map.next_key_seed(KeySeed { seed, names })
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.map.next_value_seed(Seed(seed, self.next.get()))
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// How a struct's keys are named to its type: the unread ones renamed, and, in an `ObjectMeta`,
/// `annotations` noted so its value loses the last-applied entry.
#[derive(Clone, Copy)]
struct Names<'a> {
    unread: &'static [&'static str],
    metadata: bool,
    next: &'a Cell<Place>,
}

impl Names<'_> {
    /// The name the struct is given for `key` (None: the unread name); notes `metadata.annotations`.
    fn of(self, key: &str) -> Option<&str> {
        if self.unread.contains(&key) {
            return None;
        }
        if self.metadata && key == "annotations" {
            self.next.set(Place::Annotations);
        }
        Some(key)
    }
}

struct KeySeed<'a, S> {
    seed: S,
    names: Names<'a>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Key {
            inner: deserializer,
            names: self.names,
        })
    }
}

/// A struct's key: renamed when the field is not read.
struct Key<'a, D> {
    inner: D,
    names: Names<'a>,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Key<'_, D> {
    type Error = D::Error;

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum ignored_any
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_any(Rename(visitor, self.names))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_str(Rename(visitor, self.names))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_string(Rename(visitor, self.names))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_identifier(Rename(visitor, self.names))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

struct Rename<'a, V>(V, Names<'a>);

impl<'de, V: Visitor<'de>> Visitor<'de> for Rename<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match self.1.of(v) {
            Some(key) => self.0.visit_str(key),
            None => self.0.visit_borrowed_str(SKIPPED),
        }
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        match self.1.of(v) {
            Some(key) => self.0.visit_borrowed_str(key),
            None => self.0.visit_borrowed_str(SKIPPED),
        }
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        if self.1.of(&v).is_some() {
            self.0.visit_string(v)
        } else {
            self.0.visit_borrowed_str(SKIPPED)
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

/// `metadata.annotations`, without the last-applied entry.
struct Annotations<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Annotations<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(AnnotationEntries(map))
    }
}

struct AnnotationEntries<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for AnnotationEntries<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.0.next_key::<AnnotationKey<'de>>()? else {
                return Ok(None);
            };
            match key.0 {
                Cow::Borrowed(k) if k == LAST_APPLIED => self.0.next_value::<IgnoredAny>().map(drop)?,
                Cow::Owned(k) if k == LAST_APPLIED => self.0.next_value::<IgnoredAny>().map(drop)?,
                Cow::Borrowed(k) => return seed.deserialize(BorrowedStrDeserializer::new(k)).map(Some),
                owned => return seed.deserialize(CowStrDeserializer::new(owned)).map(Some),
            }
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.0.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// An annotation's key, borrowed from the input where it can be.
struct AnnotationKey<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for AnnotationKey<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = AnnotationKey<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an annotation key")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(AnnotationKey(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(AnnotationKey(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(AnnotationKey(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::batch::v1::CronJob;
    use serde_json::json;

    use super::*;

    fn deployment() -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "uid": "u-1",
                "generation": 4,
                "creationTimestamp": "2026-11-24T16:27:33Z",
                "labels": {"app": "web"},
                "managedFields": [{"manager": "kubectl", "operation": "Update",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
                "annotations": {"a": "b", LAST_APPLIED: "{\"apiVersion\":\"apps/v1\"}\n", "z": "y"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "o"}]
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                "template": {
                    "metadata": {"labels": {"app": "web"}, "creationTimestamp": null,
                                 "annotations": {LAST_APPLIED: "x", "keep": "me"}},
                    "spec": {
                        "containers": [{"name": "web", "image": "nginx", "env": [{"name": "A", "value": "1"}],
                            "resources": {"limits": {"memory": "1Gi"}},
                            "volumeMounts": [{"name": "data", "mountPath": "/d", "readOnly": true}]}],
                        "initContainers": [{"name": "init", "image": "busybox", "restartPolicy": "Always"}],
                        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}}],
                        "nodeSelector": {"kubernetes.io/hostname": "n1"},
                        "tolerations": [{"operator": "Exists"}],
                        "dnsPolicy": "ClusterFirst",
                        "securityContext": {"runAsUser": 1000},
                        "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}]}}
                    }
                }
            },
            "status": {"replicas": 3}
        })
    }

    /// What decoding through [`Unread`] should give: the full decode with exactly the listed fields gone.
    fn without_unread(mut d: Deployment) -> Deployment {
        let meta = |m: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            m.managed_fields = None;
            m.creation_timestamp = None;
            m.generation = None;
            if let Some(a) = m.annotations.as_mut() {
                a.remove(LAST_APPLIED);
            }
        };
        meta(&mut d.metadata);
        d.status = None;
        let spec = d.spec.as_mut().unwrap();
        meta(spec.template.metadata.as_mut().unwrap());
        let pod = spec.template.spec.as_mut().unwrap();
        pod.tolerations = None;
        pod.dns_policy = None;
        pod.security_context = None;
        for c in pod
            .containers
            .iter_mut()
            .chain(pod.init_containers.iter_mut().flatten())
        {
            c.image = None;
            c.env = None;
            c.resources = None;
        }
        d
    }

    #[test]
    fn exactly_the_unread_fields_are_left_out() {
        let value = deployment();
        let Unread(got) = serde_json::from_str::<Unread<Deployment>>(&value.to_string()).unwrap();
        let full: Deployment = serde_json::from_value(value).unwrap();
        assert!(full.metadata.managed_fields.is_some() && full.status.is_some());
        let want = without_unread(full);
        assert_eq!(got, want);
        // What the rules read is there.
        let pod = got.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        assert_eq!(
            pod.containers[0].volume_mounts.as_ref().unwrap()[0].read_only,
            Some(true)
        );
        assert_eq!(
            pod.init_containers.as_ref().unwrap()[0].restart_policy.as_deref(),
            Some("Always")
        );
        assert_eq!(
            got.metadata
                .annotations
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["a", "z"]
        );
        assert_eq!(got.metadata.uid.as_deref(), Some("u-1"));
        assert_eq!(got.metadata.owner_references.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn every_format_and_every_nesting_leaves_the_same_fields_out() {
        let value = deployment();
        let want = without_unread(serde_json::from_value(value.clone()).unwrap());
        // From a Value (the manifest path), from YAML text, and nested in a CronJob's job template.
        let Unread(from_value) = serde_json::from_value::<Unread<Deployment>>(value.clone()).unwrap();
        assert_eq!(from_value, want);
        let yaml = serde_saphyr::to_string(&value).unwrap();
        let Unread(from_yaml) = serde_saphyr::from_str::<Unread<Deployment>>(&yaml).unwrap();
        assert_eq!(from_yaml, want);
        let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": value["spec"]["template"]}}}});
        let Unread(cron) = serde_json::from_value::<Unread<CronJob>>(cron).unwrap();
        let template = cron.spec.unwrap().job_template.spec.unwrap().template;
        assert_eq!(Some(template), want.spec.map(|s| s.template));
    }

    #[test]
    fn unread_fields_are_not_even_checked() {
        let mut value = deployment();
        value["metadata"]["managedFields"] = json!("not a list");
        value["metadata"]["annotations"][LAST_APPLIED] = json!({"not": "a string"});
        value["spec"]["template"]["spec"]["containers"][0]["env"] = json!(7);
        assert!(serde_json::from_value::<Deployment>(value.clone()).is_err());
        let Unread(got) = serde_json::from_value::<Unread<Deployment>>(value).unwrap();
        assert_eq!(got.spec.and_then(|s| s.replicas), Some(3));
    }

    #[test]
    fn errors_in_read_fields_are_reported_as_before() {
        for (pointer, bad) in [
            ("/spec/replicas", json!("three")),
            ("/metadata/annotations/a", json!(1)),
            (
                "/spec/template/spec/containers/0/volumeMounts/0/readOnly",
                json!("yes"),
            ),
        ] {
            let mut value = deployment();
            *value.pointer_mut(pointer).unwrap() = bad;
            let plain = serde_json::from_value::<Deployment>(value.clone()).unwrap_err();
            let unread = serde_json::from_value::<Unread<Deployment>>(value).unwrap_err();
            assert_eq!(unread.to_string(), plain.to_string(), "{pointer}");
        }
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
            let Unread(got) = serde_json::from_value::<Unread<Deployment>>(value).unwrap();
            assert_eq!(got.metadata, Default::default());
        }
    }

    #[test]
    fn every_listed_struct_is_named_as_its_type_decodes() {
        // A key k8s-openapi does not pass to `deserialize_struct` would leave nothing out, silently: each
        // struct decoded through `Unread` loses its listed fields (a workload its status, an ephemeral
        // container its image).
        use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet, StatefulSet};
        use k8s_openapi::api::batch::v1::{CronJob, Job};
        use k8s_openapi::api::core::v1::{Pod, ReplicationController};
        fn status_left_out<K>(status: serde_json::Value) -> bool
        where
            K: serde::de::DeserializeOwned + serde::Serialize,
        {
            let value = json!({"metadata": {"name": "x"}, "status": status});
            let full: K = serde_json::from_value(value.clone()).unwrap();
            let Unread(got) = serde_json::from_value::<Unread<K>>(value).unwrap();
            serde_json::to_value(full).unwrap().get("status").is_some()
                && serde_json::to_value(got).unwrap().get("status").is_none()
        }
        let replicas = json!({"replicas": 1});
        let checked = [
            ("Deployment", status_left_out::<Deployment>(replicas.clone())),
            ("StatefulSet", status_left_out::<StatefulSet>(replicas.clone())),
            (
                "DaemonSet",
                status_left_out::<DaemonSet>(json!({"currentNumberScheduled": 1,
                "desiredNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 1})),
            ),
            ("ReplicaSet", status_left_out::<ReplicaSet>(replicas.clone())),
            ("Job", status_left_out::<Job>(json!({"active": 1}))),
            ("CronJob", status_left_out::<CronJob>(json!({"active": []}))),
            (
                "ReplicationController",
                status_left_out::<ReplicationController>(replicas),
            ),
        ];
        for (name, left_out) in checked {
            assert!(left_out, "{name}");
            assert_eq!(unread_of(name), WORKLOAD, "{name} is listed");
        }
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}]}});
        let Unread(got) = serde_json::from_value::<Unread<Pod>>(pod).unwrap();
        let spec = got.spec.unwrap();
        assert_eq!(spec.containers[0].image, None);
        assert_eq!(spec.ephemeral_containers.unwrap()[0].image, None);
    }

    #[test]
    fn every_listed_field_is_a_field_of_its_struct() {
        // A misspelt name would leave nothing out, silently. Each struct, with every listed field set,
        // decoded by its full type and written again: every listed field must come back.
        use k8s_openapi::api::core::v1::{Container, PodSpec};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        let samples = json!({
            "ObjectMeta": {"creationTimestamp": "2026-01-01T00:00:00Z", "deletionGracePeriodSeconds": 1,
                "deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["f"], "generation": 1,
                "managedFields": [{"manager": "m"}], "resourceVersion": "1", "selfLink": "/x"},
            "Container": {"name": "c", "args": ["a"], "command": ["c"], "env": [{"name": "E"}],
                "envFrom": [{"prefix": "P"}], "image": "i", "imagePullPolicy": "Always", "lifecycle": {},
                "livenessProbe": {}, "ports": [{"containerPort": 80}], "readinessProbe": {},
                "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                "resources": {"limits": {"cpu": "1"}}, "securityContext": {"privileged": false},
                "startupProbe": {}, "stdin": true, "stdinOnce": true, "terminationMessagePath": "p",
                "terminationMessagePolicy": "File", "tty": true, "workingDir": "/"},
            "PodSpec": {"containers": [], "activeDeadlineSeconds": 1, "automountServiceAccountToken": true,
                "dnsConfig": {"options": []}, "dnsPolicy": "x", "enableServiceLinks": true,
                "hostAliases": [{"ip": "1.2.3.4"}], "imagePullSecrets": [{"name": "s"}], "overhead": {"cpu": "1"},
                "preemptionPolicy": "x", "priority": 1, "priorityClassName": "x",
                "readinessGates": [{"conditionType": "c"}], "resourceClaims": [{"name": "r"}],
                "resources": {"limits": {"cpu": "1"}}, "runtimeClassName": "x", "schedulerName": "x",
                "schedulingGates": [{"name": "g"}], "securityContext": {"runAsUser": 1}, "serviceAccount": "x",
                "serviceAccountName": "x", "terminationGracePeriodSeconds": 1, "tolerations": [{"key": "k"}]},
        });
        fn again<K: serde::de::DeserializeOwned + serde::Serialize>(
            v: &serde_json::Value,
        ) -> serde_json::Value {
            serde_json::to_value(serde_json::from_value::<K>(v.clone()).unwrap()).unwrap()
        }
        for (name, fields) in UNREAD {
            let sample = &samples[*name];
            let written = match *name {
                "ObjectMeta" => again::<ObjectMeta>(sample),
                "Container" | "EphemeralContainer" => again::<Container>(&samples["Container"]),
                "PodSpec" => again::<PodSpec>(sample),
                // A workload's `status`, checked by `exactly_the_unread_fields_are_left_out`.
                _ => {
                    assert_eq!(*fields, WORKLOAD, "{name}");
                    continue;
                }
            };
            for f in *fields {
                assert!(written.get(*f).is_some(), "{name}.{f} is not a field of {name}");
            }
        }
    }
}
