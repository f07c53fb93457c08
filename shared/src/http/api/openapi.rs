//! The route table of `/api/v2.0` and the OpenAPI document made from it.
//!
//! Every route is declared once, through [`Routes`], with its method,
//! path, operation id (Harbor's, where Harbor has the operation), tag and
//! success status; the router and the document (`GET
//! /api/v2.0/openapi.json`) are both built from that declaration, so no
//! route is served undocumented and none is documented unserved.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::handler::Handler;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::http::state::AppState;

/// The schema of a type, made by a generator (so shared types become
/// components).
pub type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// One operation of the API.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: &'static str,
    /// Below `/api/v2.0`, with `{parameters}`.
    pub path: &'static str,
    pub id: &'static str,
    pub tag: &'static str,
    /// What a success answers.
    pub status: u16,
    /// The JSON a success carries, when it carries one of the API's types.
    pub response: Option<SchemaOf>,
    /// The JSON body it takes, when it takes one of the API's types.
    pub request: Option<SchemaOf>,
}

/// A router under construction, and the operations it serves.
pub(super) struct Routes {
    router: Router<Arc<AppState>>,
    ops: Vec<Operation>,
}

macro_rules! methods {
    ($($name:ident => $method:literal),* $(,)?) => {
        $(
            /// Serves `handler` for this method and path, and records it.
            pub(super) fn $name<H, T>(
                mut self,
                path: &'static str,
                id: &'static str,
                tag: &'static str,
                status: u16,
                handler: H,
            ) -> Self
            where
                H: Handler<T, Arc<AppState>>,
                T: 'static,
            {
                self.router = self.router.route(path, axum::routing::$name(handler));
                self.ops.push(Operation { method: $method, path, id, tag, status, response: None, request: None });
                self
            }
        )*
    };
}

impl Routes {
    pub(super) fn new() -> Self {
        Self { router: Router::new(), ops: Vec::new() }
    }

    methods! { get => "GET", post => "POST", put => "PUT", delete => "DELETE", patch => "PATCH", head => "HEAD" }

    /// The operation declared last answers a `T` as JSON.
    pub(super) fn returns<T: JsonSchema>(mut self) -> Self {
        if let Some(op) = self.ops.last_mut() {
            op.response = Some(schema_of::<T>);
        }
        self
    }

    /// The operation declared last takes a `T` as its JSON body.
    pub(super) fn accepts<T: JsonSchema>(mut self) -> Self {
        if let Some(op) = self.ops.last_mut() {
            op.request = Some(schema_of::<T>);
        }
        self
    }

    pub(super) fn into_parts(self) -> (Router<Arc<AppState>>, Vec<Operation>) {
        (self.router, self.ops)
    }
}

/// Path parameters that are numbers; the others are strings.
fn numeric(param: &str) -> bool {
    matches!(param, "id" | "mid" | "eid" | "tid")
        || (param.ends_with("_id") && !matches!(param, "project_name_or_id" | "pool_id" | "job_id" | "registration_id"))
}

/// Words of an operation id, as a summary: `listProjects` → "List projects".
fn summary(id: &str) -> String {
    let mut out = String::new();
    for (i, c) in id.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else if i == 0 {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn operation_doc(op: &Operation, generator: &mut SchemaGenerator, inputs: &mut SchemaGenerator) -> Value {
    let mut parameters: Vec<Value> = op
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema =
                if numeric(name) { json!({"type": "integer", "format": "int64"}) } else { json!({"type": "string"}) };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    if op.method == "GET" && op.id.starts_with("list") {
        for (name, kind) in [("q", "string"), ("sort", "string"), ("page", "integer"), ("page_size", "integer")] {
            parameters.push(json!({"name": name, "in": "query", "required": false, "schema": {"type": kind}}));
        }
    }
    let mut doc = Map::new();
    doc.insert("operationId".into(), op.id.into());
    doc.insert("summary".into(), summary(op.id).into());
    doc.insert("tags".into(), json!([op.tag]));
    doc.insert("parameters".into(), parameters.into());
    if matches!(op.method, "POST" | "PUT" | "PATCH") {
        let schema = op.request.map_or_else(|| json!({"type": "object"}), |schema| schema(inputs).to_value());
        let body = json!({"required": false, "content": {"application/json": {"schema": schema}}});
        doc.insert("requestBody".into(), body);
    }
    let error = json!({"$ref": "#/components/responses/Error"});
    let mut responses = Map::new();
    let success = match op.response {
        Some(schema) => {
            json!({"description": "Success", "content": {"application/json": {"schema": schema(generator)}}})
        }
        None => json!({"description": "Success"}),
    };
    responses.insert(op.status.to_string(), success);
    for code in ["400", "401", "403", "404", "500"] {
        responses.insert(code.into(), error.clone());
    }
    doc.insert("responses".into(), responses.into());
    Value::Object(doc)
}

/// The OpenAPI 3 document of `ops`.
pub fn document(ops: &[Operation]) -> Value {
    // OpenAPI 3.0 schemas of what the API writes and of what it reads
    // (a field with a default may be left out of a request).
    let mut settings = SchemaSettings::openapi3();
    settings.contract = Contract::Serialize;
    let mut generator = settings.into_generator();
    // What requests give lands under `<name>Input`: a type may be both.
    let mut settings = SchemaSettings::openapi3();
    settings.definitions_path = "/components/schemas/input:".into();
    let mut inputs = settings.into_generator();
    let mut paths = Map::new();
    for op in ops {
        let entry = paths.entry(op.path).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(op.method.to_lowercase(), operation_doc(op, &mut generator, &mut inputs));
        }
    }
    let mut schemas = generator.take_definitions(true);
    for (name, schema) in inputs.take_definitions(true) {
        schemas.insert(format!("{name}Input"), schema);
    }
    // References into the inputs' namespace, as the names above.
    let paths = rename_input_refs(Value::Object(paths));
    let schemas = rename_input_refs(Value::Object(schemas));
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "berth: the Harbor-compatible management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The operations berth serves under /api/v2.0, made from its route table. Operation ids are Harbor's where Harbor has the operation.",
        },
        "servers": [{"url": super::PREFIX}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "responses": {
                "Error": {
                    "description": "Harbor's error body",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {"errors": {"type": "array", "items": {
                            "type": "object",
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        }}},
                    }}},
                },
            },
        },
        "security": [{"basic": []}],
    })
}

/// Rewrites `#/components/schemas/input:<name>` references (the input
/// generator's) as `#/components/schemas/<name>Input`.
fn rename_input_refs(value: Value) -> Value {
    const PREFIX: &str = "#/components/schemas/input:";
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), &v) {
                    ("$ref", Value::String(r)) if r.starts_with(PREFIX) => {
                        let name = r[PREFIX.len()..].trim_start_matches('/');
                        (k, Value::String(format!("#/components/schemas/{name}Input")))
                    }
                    _ => (k, rename_input_refs(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(rename_input_refs).collect()),
        other => other,
    }
}

/// The document of the routes served, made once.
pub fn served_document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| document(&super::table().into_parts().1))
}

/// `GET /api/v2.0/openapi.json`, to anyone.
pub async fn get() -> impl IntoResponse {
    let body = serde_json::to_vec(served_document()).unwrap_or_default();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_each_operation_once_and_the_document_all() {
        let ops = super::super::table().into_parts().1;
        let mut seen = std::collections::BTreeSet::new();
        let mut ids = std::collections::BTreeSet::new();
        for op in &ops {
            assert!(op.path.starts_with('/'), "{op:?}");
            assert!(seen.insert((op.method, op.path)), "twice: {op:?}");
            assert!(ids.insert(op.id), "operation id used twice: {op:?}");
        }
        let doc = served_document();
        let documented: usize =
            doc["paths"].as_object().map_or(0, |p| p.values().map(|m| m.as_object().map_or(0, Map::len)).sum());
        assert_eq!(documented, ops.len());
        assert_eq!(doc["paths"]["/projects/{project_name_or_id}"]["get"]["operationId"], "getProject");
        assert_eq!(doc["paths"]["/labels/{label_id}"]["delete"]["parameters"][0]["schema"]["type"], "integer");
        assert_eq!(summary("listArtifactsOfProject"), "List artifacts of project");
        // Every reference names a schema the document has.
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, v) in m {
                        match (k.as_str(), v) {
                            ("$ref", Value::String(r)) => out.push(r.clone()),
                            _ => refs(v, out),
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(doc, &mut all);
        for r in &all {
            let target = r.strip_prefix("#/components/schemas/").map(|n| &doc["components"]["schemas"][n]);
            let target = target
                .or_else(|| r.strip_prefix("#/components/responses/").map(|n| &doc["components"]["responses"][n]));
            assert!(target.is_some_and(|t| !t.is_null()), "dangling reference {r}");
        }
        let body = &doc["paths"]["/projects"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"];
        assert!(body.as_str().is_some_and(|r| r.ends_with("Input")), "{body}");
    }
}
