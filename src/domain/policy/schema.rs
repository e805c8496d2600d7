//! The JSON Schema of the policy file, generated from [`model::PolicyDocument`](super::model::PolicyDocument)
//! so the published schema and the loader cannot drift apart.
//!
//! It is published at `policies/schema.json` for editors (yaml-language-server's `# yaml-language-server:
//! $schema=` comment) and CI linters. The loader checks more than a schema can say (label key syntax,
//! `values` against the operator, unique names), so passing the schema is necessary, not sufficient.

use super::model::PolicyDocument;

/// The JSON Schema (draft 2020-12) of one `VolumePolicy` document: every key the loader accepts, with the
/// doc comments as descriptions, enums as `const` alternatives and `additionalProperties: false` wherever
/// the loader refuses unknown keys.
pub fn policy_schema() -> serde_json::Value {
    schemars::schema_for!(PolicyDocument).to_value()
}
