//! Counting what a review's objects would ask of the decision, before decoding them: a large body is
//! walked once, building nothing, and refused at the first limit it goes over, so a crafted object (a
//! hundred thousand containers in a few MiB) never turns into a gigabyte of typed structs.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::domain::workload::{Exceeded, Limited, ObjectLimits};

/// Why a body was not scanned to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanError {
    /// `field` (`object` or `oldObject`) goes over a limit.
    Exceeded {
        /// Which object of the review.
        field: &'static str,
        /// The limit.
        exceeded: Exceeded,
    },
    /// Not JSON: the decoder says why, with more detail.
    Malformed,
}

/// Walks `body` (an AdmissionReview) and counts, for `request.object` and `request.oldObject` each, JSON
/// values (managedFields aside), containers, volumes and volume mounts.
pub fn scan(body: &[u8], limits: &ObjectLimits) -> Result<(), ScanError> {
    let mut stop = None;
    let seed = Review {
        limits,
        stop: &mut stop,
    };
    // As `parse` reads it: as text when it is UTF-8 (one bulk check instead of one per string).
    let result = match std::str::from_utf8(body) {
        Ok(text) => seed.deserialize(&mut serde_json::Deserializer::from_str(text)),
        Err(_) => seed.deserialize(&mut serde_json::Deserializer::from_slice(body)),
    };
    match (result, stop) {
        (_, Some((field, exceeded))) => Err(ScanError::Exceeded { field, exceeded }),
        (Ok(()), None) => Ok(()),
        (Err(_), None) => Err(ScanError::Malformed),
    }
}

type Stop = Option<(&'static str, Exceeded)>;

struct Review<'a> {
    limits: &'a ObjectLimits,
    stop: &'a mut Stop,
}

impl<'de> DeserializeSeed<'de> for Review<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Review<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionReview")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.0 == "request" {
                map.next_value_seed(Request {
                    limits: self.limits,
                    stop: &mut *self.stop,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Request<'a> {
    limits: &'a ObjectLimits,
    stop: &'a mut Stop,
}

impl<'de> DeserializeSeed<'de> for Request<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Request<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionRequest")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let field = match key.0.as_ref() {
                "object" => "object",
                "oldObject" => "oldObject",
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let mut counts = Counts {
                limits: self.limits,
                field,
                seen: [0; 4],
                stop: &mut *self.stop,
            };
            map.next_value_seed(Node {
                counts: &mut counts,
                role: None,
            })?;
        }
        Ok(())
    }
}

/// A map key, borrowed when it can be.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

struct Counts<'a> {
    limits: &'a ObjectLimits,
    field: &'static str,
    /// Values, containers, volumes, mounts.
    seen: [usize; 4],
    stop: &'a mut Stop,
}

impl Counts<'_> {
    fn add<E: de::Error>(&mut self, what: Limited) -> Result<(), E> {
        let i = match what {
            Limited::Values => 0,
            Limited::Containers => 1,
            Limited::Volumes => 2,
            Limited::Mounts => 3,
        };
        self.seen[i] += 1;
        if let Err(exceeded) = self.limits.check(what, self.seen[i]) {
            *self.stop = Some((self.field, exceeded));
            return Err(E::custom("a limit was exceeded"));
        }
        Ok(())
    }
}

/// Any JSON value of an object; `role` says what the elements of an array here are.
struct Node<'c, 'a> {
    counts: &'c mut Counts<'a>,
    role: Option<Limited>,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.counts.add(Limited::Values)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.counts.add(Limited::Values)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.counts.add(Limited::Values)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.counts.add(Limited::Values)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.counts.add(Limited::Values)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.counts.add(Limited::Values)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.counts.add(Limited::Values)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.counts.add(Limited::Values)?;
        let counts = self.counts;
        // Counted as each element arrives: a crafted array stops at the limit.
        while seq
            .next_element_seed(Node {
                counts: &mut *counts,
                role: None,
            })?
            .is_some()
        {
            if let Some(role) = self.role {
                counts.add(role)?;
            }
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.counts.add(Limited::Values)?;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let role = match key.0.as_ref() {
                // No rule reads managedFields, and they are not decoded: walked, not counted.
                "managedFields" => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                "containers" | "initContainers" | "ephemeralContainers" => Some(Limited::Containers),
                "volumes" | "volumeClaimTemplates" => Some(Limited::Volumes),
                "volumeMounts" => Some(Limited::Mounts),
                _ => None,
            };
            map.next_value_seed(Node {
                counts: &mut *self.counts,
                role,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn review(object: serde_json::Value, old: Option<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "object": object, "oldObject": old}}),
        )
        .unwrap()
    }

    fn deployment(containers: usize, volumes: usize) -> serde_json::Value {
        let cs: Vec<_> = (0..containers)
            .map(|i| json!({"name": format!("c{i}"), "volumeMounts": [{"name": "v", "mountPath": "/v"}]}))
            .collect();
        let vs: Vec<_> = (0..volumes).map(|i| json!({"name": format!("v{i}")})).collect();
        let managed = vec![json!({"manager": "x"}); 50];
        json!({"kind": "Deployment", "metadata": {"managedFields": managed},
               "spec": {"template": {"spec": {"containers": cs, "volumes": vs}}}})
    }

    #[test]
    fn each_object_is_counted_on_its_own() {
        let limits = ObjectLimits {
            containers: 3,
            volumes: 3,
            mounts: 100,
            values: 1000,
        };
        let body = review(deployment(3, 3), Some(deployment(3, 3)));
        assert_eq!(scan(&body, &limits), Ok(()));
        let body = review(deployment(3, 3), Some(deployment(2, 4)));
        let Err(ScanError::Exceeded { field, exceeded }) = scan(&body, &limits) else {
            panic!()
        };
        assert_eq!(
            (field, exceeded.what, exceeded.count),
            ("oldObject", "volumes", 4)
        );
        let body = review(deployment(4, 0), None);
        let Err(ScanError::Exceeded { field, exceeded }) = scan(&body, &limits) else {
            panic!()
        };
        assert_eq!((field, exceeded.what), ("object", "containers"));
    }

    #[test]
    fn values_stop_at_the_limit_and_managed_fields_do_not_count() {
        let limits = ObjectLimits {
            values: 40,
            ..ObjectLimits::default()
        };
        assert_eq!(scan(&review(deployment(2, 2), None), &limits), Ok(()));
        let Err(ScanError::Exceeded { exceeded, .. }) = scan(&review(deployment(6, 2), None), &limits) else {
            panic!()
        };
        assert_eq!((exceeded.what, exceeded.count), ("JSON values", 41));
        assert_eq!(scan(b"{not json", &limits), Err(ScanError::Malformed));
    }
}
