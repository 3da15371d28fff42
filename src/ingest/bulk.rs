//! JSON bulk uploads: a JSON array of user objects (the body other bulk
//! user APIs take) becomes the CSV the import reads, so its rows are judged
//! by the same rules and reason codes as any file. Keys are the column
//! names (the same header table maps them); `"status": "Active" |
//! "Inactive"` is the `enabled` column; a list (roles) is joined with the
//! tenant's role separator. The array is streamed twice (its keys, then its
//! rows), one object in memory at a time. This module must never judge a
//! value: a wrong one reaches the import as written.

use std::fmt;
use std::io::{Read, Write};

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error("the JSON body is not an array of user objects: {0}")]
    Json(String),
    #[error("writing the converted rows: {0}")]
    Io(#[from] std::io::Error),
}

/// One user object, its keys in the order written (a `serde_json::Map`
/// would sort them, and the converted header would not be the customer's).
struct Object(Vec<(String, Value)>);

impl Object {
    fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'de> de::Deserialize<'de> for Object {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Object, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Object;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a user object like {\"email\": \"...\"}")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Object, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Object(out))
            }
        }
        d.deserialize_map(Fields)
    }
}

/// Calls `f(position, object)` for each element of a top-level array.
struct Each<'f, F>(&'f mut F);

impl<'de, F: FnMut(usize, Object) -> Result<(), String>> Visitor<'de> for Each<'_, F> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of user objects ([{\"email\": ...}, ...])")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0;
        while let Some(obj) = seq
            .next_element::<Object>()
            .map_err(|e| de::Error::custom(format!("element {}: {e}", n + 1)))?
        {
            n += 1;
            (self.0)(n, obj).map_err(de::Error::custom)?;
        }
        Ok(n)
    }
}

impl<'de, F: FnMut(usize, Object) -> Result<(), String>> DeserializeSeed<'de> for Each<'_, F> {
    type Value = usize;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

fn each<R: Read>(
    reader: R,
    mut f: impl FnMut(usize, Object) -> Result<(), String>,
) -> Result<usize, BulkError> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    let n = Each(&mut f)
        .deserialize(&mut de)
        .map_err(|e| BulkError::Json(e.to_string()))?;
    de.end().map_err(|e| BulkError::Json(e.to_string()))?;
    Ok(n)
}

/// The column a key is written under.
fn column(key: &str, has_enabled: bool) -> &str {
    if !has_enabled && key.eq_ignore_ascii_case("status") {
        "enabled"
    } else {
        key
    }
}

fn cell(key: &str, v: &Value, role_separator: &str) -> Result<String, String> {
    Ok(match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for i in items {
                match i {
                    Value::String(s) => parts.push(s.clone()),
                    _ => {
                        return Err(format!(
                            "\"{key}\": a list holds names (strings), like [\"admin\", \"staff\"]"
                        ))
                    }
                }
            }
            parts.join(role_separator)
        }
        Value::Object(_) => {
            return Err(format!(
                "\"{key}\" is an object; give each field as a plain value"
            ))
        }
    })
}

/// Converts the array `open()` reads (called twice) into CSV on `out`.
/// Returns the number of user objects.
pub fn json_to_csv<R: Read, W: Write>(
    open: impl Fn() -> std::io::Result<R>,
    out: W,
    role_separator: &str,
) -> Result<usize, BulkError> {
    let mut keys: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    each(open()?, |_, obj| {
        for k in obj.keys() {
            if seen.insert(k.clone()) {
                keys.push(k.clone());
            }
        }
        Ok(())
    })?;
    let has_enabled = keys.iter().any(|k| k.eq_ignore_ascii_case("enabled"));
    let mut w = csv::Writer::from_writer(out);
    w.write_record(keys.iter().map(|k| column(k, has_enabled)))
        .map_err(|e| BulkError::Io(e.into()))?;
    let mut record = Vec::with_capacity(keys.len());
    let n = each(open()?, |i, obj| {
        record.clear();
        for k in &keys {
            let v = obj.get(k).unwrap_or(&Value::Null);
            record.push(cell(k, v, role_separator).map_err(|e| format!("user {i}: {e}"))?);
        }
        w.write_record(&record).map_err(|e| e.to_string())
    })?;
    w.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(json: &str) -> Result<String, BulkError> {
        let mut out = Vec::new();
        json_to_csv(|| Ok(json.as_bytes()), &mut out, ";")?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn objects_become_rows_under_the_union_of_their_keys() {
        let csv = convert(
            r#"[{"userId":"u1","email":"a@x.example","status":"Active","roles":["a","b"]},
                {"userId":"u2","email":"b@x.example","status":"Inactive","firstName":null,"age":3}]"#,
        )
        .unwrap();
        assert_eq!(
            csv,
            "userId,email,enabled,roles,firstName,age\nu1,a@x.example,Active,a;b,,\nu2,b@x.example,Inactive,,,3\n"
        );
    }

    #[test]
    fn what_is_not_an_array_of_flat_objects_is_refused_with_the_place() {
        assert!(convert(r#"{"email":"a"}"#)
            .unwrap_err()
            .to_string()
            .contains("array"));
        assert!(convert(r#"[{"email":"a"}, 3]"#)
            .unwrap_err()
            .to_string()
            .contains("element 2"));
        assert!(convert(r#"[{"email":{"x":1}}]"#)
            .unwrap_err()
            .to_string()
            .contains("user 1"));
        assert!(convert(r#"[{"email":"a"}"#).is_err(), "cut short");
    }
}
