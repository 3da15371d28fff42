//! Every TOML syntax error and every unknown key of a configuration, found
//! in one run: the syntax errors by parsing again with each offending line
//! blanked (line numbers stay those of the file), the unknown keys by
//! walking the parsed document against the raw structs' own field lists
//! (read from their serde derive, so there is no second list to keep in
//! step). Unknown keys are removed once reported, so the typed stage can go
//! on and report the values' problems too. This module must never judge a
//! value: `config::validate` does.

use serde::de::{self, Deserialize, Visitor};
use toml::{Table, Value};

use super::raw::{
    RawAccount, RawApiKey, RawConfig, RawField, RawHttp, RawInvitation, RawProvision, RawSftp,
    RawSmtp, RawTenant, RawWebhook,
};

/// How many syntax errors one run lists at most (a broken multi-line string
/// can make every later line look wrong).
const MAX_SYNTAX_ERRORS: usize = 20;

/// The document as a table, or every syntax error found in it.
pub(super) fn parse(text: &str) -> Result<Table, Vec<String>> {
    let first = match text.parse::<Table>() {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    let mut problems = vec![super::toml_problem(&first)];
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut err = first;
    while problems.len() < MAX_SYNTAX_ERRORS {
        let Some(span) = err.span() else { break };
        let current = lines.join("\n");
        let line = current
            .get(..span.start)
            .map_or(0, |before| before.matches('\n').count());
        match lines.get_mut(line) {
            Some(l) if !l.trim().is_empty() => l.clear(),
            _ => break,
        }
        match lines.join("\n").parse::<Table>() {
            Ok(_) => break,
            Err(e) => {
                let p = super::toml_problem(&e);
                if problems.contains(&p) {
                    break;
                }
                problems.push(p);
                err = e;
            }
        }
    }
    Err(problems)
}

/// Removes every key the raw structs do not know from `root`, saying each
/// one by its full path.
pub(super) fn strip_unknown(root: &mut Table, problems: &mut Vec<String>) {
    known("", root, fields_of::<RawConfig>(), problems);
    if let Some(Value::Table(t)) = root.get_mut("sftp") {
        known("sftp", t, fields_of::<RawSftp>(), problems);
    }
    if let Some(Value::Table(t)) = root.get_mut("smtp") {
        known("smtp", t, fields_of::<RawSmtp>(), problems);
    }
    if let Some(Value::Table(t)) = root.get_mut("http") {
        known("http", t, fields_of::<RawHttp>(), problems);
    }
    if let Some(Value::Table(tenants)) = root.get_mut("tenants") {
        for (name, v) in tenants.iter_mut() {
            if let Value::Table(t) = v {
                tenant(&format!("tenants.{name}"), t, problems);
            }
        }
    }
}

fn tenant(path: &str, t: &mut Table, problems: &mut Vec<String>) {
    known(path, t, fields_of::<RawTenant>(), problems);
    if let Some(Value::Array(accounts)) = t.get_mut("accounts") {
        for (i, a) in accounts.iter_mut().enumerate() {
            if let Value::Table(a) = a {
                // Named as the value checks name it: by the account's name.
                let p = match a.get("name").and_then(Value::as_str) {
                    Some(name) => format!("{path}.accounts.{name}"),
                    None => format!("{path}.accounts[{i}]"),
                };
                known(&p, a, fields_of::<RawAccount>(), problems);
            }
        }
    }
    if let Some(Value::Table(fields)) = t.get_mut("fields") {
        for (name, f) in fields.iter_mut() {
            if let Value::Table(f) = f {
                let p = format!("{path}.fields.{name}");
                known(&p, f, fields_of::<RawField>(), problems);
            }
        }
    }
    if let Some(Value::Array(keys)) = t.get_mut("api_keys") {
        for (i, k) in keys.iter_mut().enumerate() {
            if let Value::Table(k) = k {
                let p = format!("{path}.api_keys[{i}]");
                known(&p, k, fields_of::<RawApiKey>(), problems);
            }
        }
    }
    if let Some(Value::Array(hooks)) = t.get_mut("webhooks") {
        for (i, h) in hooks.iter_mut().enumerate() {
            if let Value::Table(h) = h {
                let p = format!("{path}.webhooks[{i}]");
                known(&p, h, fields_of::<RawWebhook>(), problems);
            }
        }
    }
    if let Some(Value::Table(p)) = t.get_mut("provision") {
        known(
            &format!("{path}.provision"),
            p,
            fields_of::<RawProvision>(),
            problems,
        );
    }
    if let Some(Value::Table(i)) = t.get_mut("invitation") {
        known(
            &format!("{path}.invitation"),
            i,
            fields_of::<RawInvitation>(),
            problems,
        );
    }
}

fn known(path: &str, t: &mut Table, fields: &[&str], problems: &mut Vec<String>) {
    t.retain(|key, _| {
        if fields.contains(&key) {
            return true;
        }
        let full = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        let hint = match fields.iter().find(|f| distance(f, key) <= 2) {
            Some(f) => format!("did you mean {f:?}? "),
            None => String::new(),
        };
        let table = if path.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in [{path}]")
        };
        problems.push(format!(
            "{full}: unknown key; {hint}the keys {table} are: {}",
            fields.join(", ")
        ));
        false
    });
}

/// Edit distance, for the "did you mean" of a misspelt key.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The field names serde's derive gives a struct: asked of it by a
/// deserializer that only records them.
fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("field names only"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_derive() {
        assert!(fields_of::<RawAccount>().contains(&"password_hash"));
        assert!(fields_of::<RawConfig>().contains(&"tenants"));
    }

    #[test]
    fn every_unknown_key_is_named_by_its_path() {
        let mut t: Table = "colour = 1\n[sftp]\nlisten2 = \"x\"\n[tenants.a]\nmod = \"x\"\n\
                            [[tenants.a.accounts]]\nname = \"n\"\npasword_hash = \"h\"\n"
            .parse()
            .unwrap();
        let mut p = Vec::new();
        strip_unknown(&mut t, &mut p);
        let keys: Vec<&str> = p.iter().map(|m| m.split(':').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "colour",
                "sftp.listen2",
                "tenants.a.mod",
                "tenants.a.accounts.n.pasword_hash"
            ]
        );
        assert!(p[3].contains("did you mean \"password_hash\""), "{}", p[3]);
        assert!(!t.contains_key("colour"));
    }

    #[test]
    fn several_syntax_errors_in_one_run() {
        let p = parse("a = \nb = 1\nc = \"x\nd = 2\n").unwrap_err();
        assert!(p.len() >= 2, "{p:?}");
        assert!(p[0].contains("line 1"), "{p:?}");
        assert!(p[1].contains("line 3"), "{p:?}");
    }
}
