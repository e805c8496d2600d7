//! A document once parsed: decoded into its typed object at once (its `serde_json::Value` then dropped),
//! with what names it when it is not decoded, and where its text is to read it again.

use std::ops::Range;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize as _;
use serde_saphyr::MessageFormatter as _;

use super::{Manifest, ManifestError, Origin};
use crate::domain::workload::{DecodeError, Decoded, ObjectType, decode_value, type_of};

/// One document of a manifest, decoded.
///
/// The document was parsed once, into a `serde_json::Value` (YAML's own typing of scalars, as kubectl sends
/// it to the API server), then decoded into its k8s-openapi type and the value dropped, so reading many
/// files never holds all their values at once. [`Document::value`] parses the document again when a caller
/// needs the object as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Where it came from.
    pub origin: Origin,
    /// The object volguard reads, the kind it skips, or why it could not be decoded.
    pub decoded: Result<Decoded, DecodeError>,
    /// The namespace and name as written, for objects that were not decoded (skipped or invalid); empty
    /// for decoded ones, whose metadata says it.
    pub written: WrittenName,
    source: Source,
}

/// `metadata.namespace` and `metadata.name`, as far as the document has them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WrittenName {
    /// The namespace, if written.
    pub namespace: Option<String>,
    /// The name, if written.
    pub name: Option<String>,
}

/// Where a document's text is, to parse it again.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Source {
    /// A YAML document: its bytes in the file's text.
    Yaml(Arc<str>, Range<usize>),
    /// A JSON document: its bytes in the file's text (a file may hold several, one after the other).
    Json(Arc<str>, Range<usize>),
    /// An item of a `kind: List`.
    Item(Arc<serde_json::Value>, usize),
}

impl Document {
    /// The document as written, as a `serde_json::Value` (parsed again; for a List's item, the item).
    pub fn value(&self) -> Result<serde_json::Value, ManifestError> {
        let syntax = |line: u64, column: u64, message: String| ManifestError::Syntax {
            file: self.origin.source.clone(),
            line,
            column,
            message,
        };
        let mut value = match &self.source {
            Source::Yaml(text, bytes) => {
                serde_saphyr::from_str_with_options(&text[bytes.clone()], yaml_options()).map_err(|e| {
                    let (line, column) = yaml_position(&e);
                    syntax(line, column, yaml_message(&e))
                })?
            }
            Source::Json(text, bytes) => serde_json::from_str(&text[bytes.clone()])
                .map_err(|e| syntax(e.line() as u64, e.column() as u64, e.to_string()))?,
            Source::Item(list, index) => list["items"][*index].clone(),
        };
        as_kubectl_sends(&mut value);
        Ok(value)
    }
}

/// YAML as kubectl reads it (YAML 1.1 through sigs.k8s.io/yaml): `017` is octal, `1_000` a thousand,
/// `0x1f` and `0b101` numbers, `yes` and `on` booleans.
pub(super) fn yaml_options() -> serde_saphyr::options::Options {
    let mut options = serde_saphyr::options::Options::default();
    options.legacy_octal_numbers = true;
    options
}

/// A document's numbers as kubectl sends them: YAML and JSON are read into Go's `float64` and written
/// back as JSON, so `replicas: 3.0` (or `08`, which is not octal and so a float) reaches the API server
/// as `3`, which its integer fields accept. Whole floats become integers here too.
pub(super) fn as_kubectl_sends(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9_007_199_254_740_992.0
            {
                // Exact: |f| < 2^53 and whole.
                #[allow(clippy::cast_possible_truncation)]
                let whole = f as i64;
                *value = serde_json::Value::from(whole);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(as_kubectl_sends),
        serde_json::Value::Object(map) => map.values_mut().for_each(as_kubectl_sends),
        _ => {}
    }
}

impl Manifest {
    /// Decodes one parsed document (each item, for a list) and adds it.
    pub(super) fn add(&mut self, origin: Origin, mut value: serde_json::Value, source: Source) {
        as_kubectl_sends(&mut value);
        let Some(item_type) = list_of(&value) else {
            let (decoded, written) = decode(&value);
            return self.documents.push(Document {
                origin,
                decoded,
                written,
                source,
            });
        };
        let list = Arc::new(value);
        let items = list["items"].as_array().map_or(0, Vec::len);
        for index in 0..items {
            let mut item = list["items"][index].clone();
            // The API server's typed lists (`DeploymentList`) leave each item's type out.
            if let (Some(ty), serde_json::Value::Object(map)) = (item_type, &mut item) {
                for (key, value) in [("apiVersion", ty.api_version()), ("kind", ty.kind())] {
                    map.entry(key).or_insert_with(|| value.into());
                }
            }
            let (decoded, written) = decode(&item);
            self.documents.push(Document {
                origin: Origin {
                    item: Some(index),
                    ..origin.clone()
                },
                decoded,
                written,
                source: Source::Item(Arc::clone(&list), index),
            });
        }
    }
}

/// Whether a document is a list whose items are read one by one: `v1 List` (as `kubectl get -o yaml`
/// prints several objects; `Some(None)`: each item says its type) or the typed list of a kind volguard
/// reads (`apps/v1 DeploymentList`: `Some(Some(Deployment))`), with `items`. Any other `*List` is an object
/// of a kind volguard does not read, and is skipped as one.
fn list_of(value: &serde_json::Value) -> Option<Option<ObjectType>> {
    let (api_version, kind) = type_of(value).ok()?;
    value.get("items")?.as_array()?;
    if (api_version, kind) == ("v1", "List") {
        return Some(None);
    }
    ObjectType::of_list(api_version, kind).map(Some)
}

/// Decodes a document, and reads the name of one that is not decoded.
fn decode(value: &serde_json::Value) -> (Result<Decoded, DecodeError>, WrittenName) {
    let (api_version, kind) = match type_of(value) {
        Ok(type_of) => type_of,
        Err(e) => return (Err(e), WrittenName::default()),
    };
    let decoded = match ObjectType::of(api_version, kind) {
        Some(ty) => decode_value(ty, value).map(|r| Decoded::Resource(Box::new(r))),
        None => Ok(Decoded::Skipped {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        }),
    };
    let written = match &decoded {
        Ok(Decoded::Resource(_)) => WrittenName::default(),
        // Only to name the object: as far as the metadata decodes.
        _ => value
            .get("metadata")
            .and_then(|m| ObjectMeta::deserialize(m).ok())
            .map(|m| WrittenName {
                namespace: m.namespace,
                name: m.name,
            })
            .unwrap_or_default(),
    };
    (decoded, written)
}

/// Where serde-saphyr stopped, 1-based (0, 0 when it does not say).
pub(super) fn yaml_position(e: &serde_saphyr::Error) -> (u64, u64) {
    e.location().map_or((0, 0), |l| (l.line(), l.column()))
}

/// serde-saphyr's message, without its position and source snippet (the caller places the error).
pub(super) fn yaml_message(e: &serde_saphyr::Error) -> String {
    serde_saphyr::DefaultMessageFormatter
        .format_message(e.without_snippet())
        .into_owned()
}
