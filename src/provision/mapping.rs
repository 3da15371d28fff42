//! A stored user as a SCIM 2.0 User resource (RFC 7643 §4.1, and the
//! enterprise extension for the manager): `userName` and `externalId` are
//! the tenant's key, so the application finds the user again by it. This
//! module must never read the store or call the application: it only
//! translates.

use serde_json::{json, Map, Value};

use crate::store::users::User;

pub const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The whole user, for a POST or a PUT. `manager`: the manager's id in the
/// application, when they have one there.
pub fn user_json(user: &User, manager: Option<&str>) -> Value {
    let mut o = Map::new();
    let mut schemas = vec![json!(CORE)];
    if manager.is_some() {
        schemas.push(json!(ENTERPRISE));
    }
    o.insert("schemas".into(), Value::Array(schemas));
    o.insert("userName".into(), json!(user.key));
    o.insert("externalId".into(), json!(user.key));
    let mut name = Map::new();
    if let Some(g) = non_empty(&user.first_name) {
        name.insert("givenName".into(), json!(g));
    }
    if let Some(f) = non_empty(&user.last_name) {
        name.insert("familyName".into(), json!(f));
    }
    if !name.is_empty() {
        o.insert("name".into(), Value::Object(name));
    }
    if !user.email.is_empty() {
        o.insert(
            "emails".into(),
            json!([{ "value": user.email, "primary": true }]),
        );
    }
    o.insert("active".into(), json!(user.enabled));
    if let Some(m) = non_empty(&user.mobile_number) {
        o.insert(
            "phoneNumbers".into(),
            json!([{ "value": m, "type": "mobile" }]),
        );
    }
    let (country, region) = (non_empty(&user.country), non_empty(&user.state));
    if country.is_some() || region.is_some() {
        let mut a = Map::new();
        if let Some(c) = country {
            a.insert("country".into(), json!(c));
        }
        if let Some(r) = region {
            a.insert("region".into(), json!(r));
        }
        o.insert("addresses".into(), json!([a]));
    }
    if !user.roles.is_empty() {
        let roles: Vec<Value> = user.roles.iter().map(|r| json!({ "value": r })).collect();
        o.insert("roles".into(), Value::Array(roles));
    }
    if let Some(m) = manager {
        o.insert(ENTERPRISE.into(), json!({ "manager": { "value": m } }));
    }
    Value::Object(o)
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            key: "u1".into(),
            user_id: Some("u1".into()),
            email: "ann@example.com".into(),
            first_name: Some("Ann".into()),
            last_name: Some("One".into()),
            enabled: false,
            roles: vec!["admin".into(), "hr".into()],
            reports_to: Some("boss".into()),
            task_notification: String::new(),
            notify_if_new_user: false,
            mobile_number: Some("+15550100".into()),
            country: Some("US".into()),
            state: None,
            last_active_date: None,
            attributes: Map::new(),
        }
    }

    #[test]
    fn a_user_becomes_a_scim_user_with_its_manager() {
        let v = user_json(&user(), Some("id-9"));
        assert_eq!(v["schemas"], json!([CORE, ENTERPRISE]));
        assert_eq!(v["userName"], "u1");
        assert_eq!(v["externalId"], "u1");
        assert_eq!(v["name"], json!({"givenName": "Ann", "familyName": "One"}));
        assert_eq!(
            v["emails"],
            json!([{"value": "ann@example.com", "primary": true}])
        );
        assert_eq!(v["active"], false);
        assert_eq!(
            v["phoneNumbers"],
            json!([{"value": "+15550100", "type": "mobile"}])
        );
        assert_eq!(v["addresses"], json!([{"country": "US"}]));
        assert_eq!(v["roles"], json!([{"value": "admin"}, {"value": "hr"}]));
        assert_eq!(v[ENTERPRISE]["manager"]["value"], "id-9");
        let plain = user_json(&user(), None);
        assert_eq!(plain["schemas"], json!([CORE]));
        assert!(plain.get(ENTERPRISE).is_none());
    }
}
