//! The exports customers actually drop (issue 12): for each of the eight
//! systems, a file built from the vendor's documented header (every column,
//! in the vendor's order) is imported by the real binary, and what it
//! stored is read back through `users export`: key, names, email, enabled,
//! manager and mobile as the export means them. Also: title lines above the
//! header, the PowerShell `#TYPE` line, secrets that must never land, the
//! tenant's layout pin, and `template --layout`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{stderr, stdout, Env, TENANT};

// --- layouts helpers ---

/// One user as `users export` shows it: column → value.
type User = BTreeMap<String, String>;

/// A CSV line of `header`'s columns: the named cells, every other cell empty.
fn line(header: &[&str], cells: &[(&str, &str)]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let record: Vec<&str> = header
        .iter()
        .map(|h| {
            cells
                .iter()
                .find(|(name, _)| name == h)
                .map(|(_, v)| *v)
                .unwrap_or("")
        })
        .collect();
    for (name, _) in cells {
        assert!(
            header.contains(name),
            "{name} is not a column of the header"
        );
    }
    w.write_record(&record).unwrap();
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// The header line and one line per user.
fn file(header: &[&str], users: &[&[(&str, &str)]]) -> String {
    let mut s = line(header, &header.iter().map(|h| (*h, *h)).collect::<Vec<_>>());
    for u in users {
        s.push_str(&line(header, u));
    }
    s
}

/// Asserts an import went through whole, read as `layout`.
fn assert_clean(v: &Value, layout: &str) {
    assert_eq!(v["status"], "ok", "{v:#}");
    assert_eq!(v["counts"]["failed"], 0, "{v:#}");
    assert_eq!(v["layout"], layout, "{v:#}");
}

/// The tenant's users through `users export`, by user_id.
fn users(env: &Env) -> BTreeMap<String, User> {
    let out = env.run(&["users", "export", "--tenant", TENANT]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut r = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records()
        .map(|rec| {
            let u: User = header
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_string))
                .collect();
            (u["user_id"].clone(), u)
        })
        .collect()
}

/// What a user should be: user_id, first, last, email, enabled, manager, mobile.
type Want<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
);

fn assert_users(env: &Env, want: &[Want<'_>]) {
    let got = users(env);
    let ids: Vec<&str> = got.keys().map(String::as_str).collect();
    let mut want_ids: Vec<&str> = want.iter().map(|w| w.0).collect();
    want_ids.sort_unstable();
    assert_eq!(ids, want_ids, "the stored users");
    for &(id, first, last, email, enabled, manager, mobile) in want {
        let u = &got[id];
        let cell = |c: &str| u[c].trim_start_matches('\'').to_string();
        assert_eq!(
            (
                cell("first_name"),
                cell("last_name"),
                cell("email"),
                cell("enabled"),
                cell("reports_to"),
                cell("mobile_number"),
            ),
            (
                first.to_string(),
                last.to_string(),
                email.to_string(),
                enabled.to_string(),
                manager.to_string(),
                mobile.to_string(),
            ),
            "user {id}: {u:?}"
        );
    }
}

/// Every byte userdrop keeps for the tenant: the store (with its journal),
/// and everything under the data dir (results/, .bak/, mail outbox).
fn everything_kept(env: &Env) -> Vec<u8> {
    let mut all = Vec::new();
    let mut stack = vec![env.dir.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_none_or(|e| e != "csv") || p.starts_with(env.path("data")) {
                // The uploaded files the test wrote are the customer's, not ours.
                all.extend(std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

const GOOGLE: &[&str] = &[
    "First Name [Required]",
    "Last Name [Required]",
    "Email Address [Required]",
    "Password [Required]",
    "Password Hash Function [UPLOAD ONLY]",
    "Org Unit Path [Required]",
    "New Primary Email [UPLOAD ONLY]",
    "Status [READ ONLY]",
    "Last Sign In [READ ONLY]",
    "Recovery Email",
    "Home Secondary Email",
    "Work Secondary Email",
    "Recovery Phone [MUST BE IN THE E.164 FORMAT]",
    "Work Phone",
    "Home Phone",
    "Mobile Phone",
    "Work Address",
    "Home Address",
    "Employee ID",
    "Employee Type",
    "Employee Title",
    "Manager Email",
    "Department",
    "Cost Center",
    "2sv Enrolled [READ ONLY]",
    "2sv Enforced [READ ONLY]",
    "Building ID",
    "Floor Name",
    "Floor Section",
    "Email Usage [READ ONLY]",
    "Drive Usage [READ ONLY]",
    "Total Storage [READ ONLY]",
    "New Status [UPLOAD ONLY]",
    "Change Password at Next Sign-In",
    "Advanced Protection Program enrollment",
];

const ENTRA: &[&str] = &[
    "userPrincipalName",
    "displayName",
    "surname",
    "mail",
    "givenName",
    "objectId",
    "userType",
    "jobTitle",
    "department",
    "accountEnabled",
    "usageLocation",
    "streetAddress",
    "state",
    "country",
    "physicalDeliveryOfficeName",
    "city",
    "postalCode",
    "telephoneNumber",
    "mobile",
    "authenticationAlternativePhoneNumber",
    "authenticationEmail",
    "alternateEmailAddress",
    "ageGroup",
    "consentProvidedForMinor",
    "legalAgeGroupClassification",
];

const OKTA: &[&str] = &[
    "id",
    "status",
    "created",
    "activated",
    "statusChanged",
    "lastLogin",
    "lastUpdated",
    "passwordChanged",
    "login",
    "firstName",
    "lastName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
    "email",
    "title",
    "displayName",
    "nickName",
    "profileUrl",
    "secondEmail",
    "mobilePhone",
    "primaryPhone",
    "streetAddress",
    "city",
    "state",
    "zipCode",
    "countryCode",
    "postalAddress",
    "preferredLanguage",
    "locale",
    "timezone",
    "userType",
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "managerId",
    "manager",
];

const ONEROSTER: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "enabledUser",
    "orgSourcedIds",
    "role",
    "username",
    "userIds",
    "givenName",
    "familyName",
    "middleName",
    "identifier",
    "email",
    "sms",
    "phone",
    "agentSourcedIds",
    "grades",
    "password",
];

const ACTIVE_DIRECTORY: &[&str] = &[
    "AccountExpirationDate",
    "accountExpires",
    "AccountLockoutTime",
    "AccountNotDelegated",
    "AllowReversiblePasswordEncryption",
    "BadLogonCount",
    "CannotChangePassword",
    "CanonicalName",
    "City",
    "CN",
    "Company",
    "Country",
    "countryCode",
    "Created",
    "Deleted",
    "Department",
    "Description",
    "DisplayName",
    "DistinguishedName",
    "Division",
    "EmailAddress",
    "EmployeeID",
    "EmployeeNumber",
    "Enabled",
    "Fax",
    "GivenName",
    "HomeDirectory",
    "HomePhone",
    "Initials",
    "LastLogonDate",
    "LockedOut",
    "mail",
    "Manager",
    "MemberOf",
    "MobilePhone",
    "Modified",
    "Name",
    "ObjectClass",
    "ObjectGUID",
    "Office",
    "OfficePhone",
    "Organization",
    "PasswordExpired",
    "PasswordLastSet",
    "PasswordNeverExpires",
    "PasswordNotRequired",
    "PostalCode",
    "SamAccountName",
    "SID",
    "sn",
    "State",
    "StreetAddress",
    "Surname",
    "Title",
    "userAccountControl",
    "UserPrincipalName",
    "whenChanged",
    "whenCreated",
];

const BAMBOOHR: &[&str] = &[
    "Employee #",
    "Status",
    "First Name",
    "Last Name",
    "Preferred Name",
    "Work Email",
    "Home Email",
    "Mobile Phone",
    "Work Phone",
    "Job Title",
    "Department",
    "Division",
    "Location",
    "Country",
    "State",
    "Hire Date",
    "Supervisor",
    "Supervisor EID",
];

const WORKDAY: &[&str] = &[
    "Employee ID",
    "Worker",
    "Legal First Name",
    "Legal Last Name",
    "Preferred First Name",
    "Preferred Last Name",
    "Primary Work Email",
    "Primary Work Phone",
    "Primary Work Mobile Phone",
    "Business Title",
    "Supervisory Organization",
    "Manager",
    "Manager Employee ID",
    "Location",
    "Country",
    "Worker Type",
    "Hire Date",
    "Termination Date",
    "Active Status",
];

const ADP: &[&str] = &[
    "Associate ID",
    "Position ID",
    "File Number",
    "First Name",
    "Last Name",
    "Preferred Name",
    "Work Contact: Work Email",
    "Personal Contact: Personal Email",
    "Work Contact: Work Phone",
    "Personal Contact: Personal Mobile",
    "Job Title Description",
    "Home Department Description",
    "Location Description",
    "Position Status",
    "Hire Date",
    "Termination Date",
    "Reports To Name",
    "Reports To Associate ID",
];

const GOOGLE_PASSWORDS: &[&str] = &[
    "S3cret-Ann!",
    "b0b-Pa55w0rd",
    "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8",
];

fn google_file() -> String {
    file(
        GOOGLE,
        &[
            &[
                ("First Name [Required]", "Ann"),
                ("Last Name [Required]", "Archer"),
                ("Email Address [Required]", "ann.archer@acme.example"),
                ("Password [Required]", GOOGLE_PASSWORDS[0]),
                ("Org Unit Path [Required]", "/"),
                ("Status [READ ONLY]", "Active"),
                ("Last Sign In [READ ONLY]", "2026/11/29 08:12:44"),
                ("Recovery Email", "ann@home.example"),
                (
                    "Recovery Phone [MUST BE IN THE E.164 FORMAT]",
                    "+14155550190",
                ),
                ("Work Phone", "+1 415 555 0100"),
                ("Mobile Phone", "+1 415 555 0101"),
                ("Employee ID", "E100"),
                ("Employee Title", "CEO"),
                ("Department", "Board"),
                ("2sv Enrolled [READ ONLY]", "True"),
                ("2sv Enforced [READ ONLY]", "False"),
            ],
            &[
                ("First Name [Required]", "Bob"),
                ("Last Name [Required]", "Baker"),
                ("Email Address [Required]", "bob.baker@acme.example"),
                ("Password [Required]", GOOGLE_PASSWORDS[1]),
                ("Org Unit Path [Required]", "/Sales"),
                ("Status [READ ONLY]", "Active"),
                ("Mobile Phone", "+1 415 555 0102"),
                ("Employee ID", "E101"),
                ("Manager Email", "ann.archer@acme.example"),
                ("Department", "Sales"),
            ],
            &[
                ("First Name [Required]", "Cy"),
                ("Last Name [Required]", "Cole"),
                ("Email Address [Required]", "cy.cole@acme.example"),
                ("Password [Required]", GOOGLE_PASSWORDS[2]),
                ("Password Hash Function [UPLOAD ONLY]", "SHA-1"),
                ("Org Unit Path [Required]", "/Sales"),
                ("Status [READ ONLY]", "Suspended"),
                ("Employee ID", "E102"),
                ("Manager Email", "ann.archer@acme.example"),
            ],
        ],
    )
}

#[test]
fn google_workspace_user_download_imports_as_it_means() {
    let env = Env::new("");
    let v = env.import_json("google.csv", &google_file());
    assert_clean(&v, "google_workspace");
    assert_eq!(
        v["secret_columns"],
        serde_json::json!([
            "Password [Required]",
            "Password Hash Function [UPLOAD ONLY]"
        ])
    );
    assert_users(
        &env,
        &[
            (
                "ann.archer@acme.example",
                "Ann",
                "Archer",
                "ann.archer@acme.example",
                "true",
                "",
                "+1 415 555 0101",
            ),
            (
                "bob.baker@acme.example",
                "Bob",
                "Baker",
                "bob.baker@acme.example",
                "true",
                "ann.archer@acme.example",
                "+1 415 555 0102",
            ),
            (
                "cy.cole@acme.example",
                "Cy",
                "Cole",
                "cy.cole@acme.example",
                "false",
                "ann.archer@acme.example",
                "",
            ),
        ],
    );
}

#[test]
fn entra_download_users_honours_account_enabled_false() {
    let env = Env::new("");
    let text = file(
        ENTRA,
        &[
            &[
                ("userPrincipalName", "ann.archer@acme.example"),
                ("displayName", "Ann Archer"),
                ("surname", "Archer"),
                ("mail", "ann.archer@acme.example"),
                ("givenName", "Ann"),
                ("objectId", "1f0c8a52-6c0e-4d3b-9f51-0a7b2c9d0e01"),
                ("userType", "Member"),
                ("jobTitle", "CEO"),
                ("accountEnabled", "True"),
                ("usageLocation", "US"),
                ("state", "CA"),
                ("country", "United States"),
                ("mobile", "+1 415 555 0101"),
                ("ageGroup", ""),
            ],
            &[
                ("userPrincipalName", "dan.dorn@acme.example"),
                ("displayName", "Dan Dorn"),
                ("surname", "Dorn"),
                ("mail", "dan.dorn@acme.example"),
                ("givenName", "Dan"),
                ("objectId", "7d2e4b10-3a9f-4c55-8e21-5b6a7c8d9e02"),
                ("userType", "Member"),
                ("accountEnabled", "False"),
                ("country", "United States"),
                ("telephoneNumber", "+1 415 555 0200"),
            ],
        ],
    );
    let v = env.import_json("entra.csv", &text);
    assert_clean(&v, "entra");
    assert_users(
        &env,
        &[
            (
                "1f0c8a52-6c0e-4d3b-9f51-0a7b2c9d0e01",
                "Ann",
                "Archer",
                "ann.archer@acme.example",
                "true",
                "",
                "+1 415 555 0101",
            ),
            (
                "7d2e4b10-3a9f-4c55-8e21-5b6a7c8d9e02",
                "Dan",
                "Dorn",
                "dan.dorn@acme.example",
                "false",
                "",
                "",
            ),
        ],
    );
}

#[test]
fn okta_export_statuses_and_manager_usernames() {
    let env = Env::new("");
    let user = |id,
                status,
                login: &'static str,
                first,
                last,
                mobile,
                manager: &'static str|
     -> Vec<(&'static str, &'static str)> {
        vec![
            ("id", id),
            ("status", status),
            ("created", "2024-01-09T10:00:00.000Z"),
            ("lastLogin", "2026-11-29T08:00:00.000Z"),
            ("login", login),
            ("firstName", first),
            ("lastName", last),
            ("email", login),
            ("displayName", "x"),
            ("secondEmail", ""),
            ("mobilePhone", mobile),
            ("countryCode", "US"),
            ("employeeNumber", "E1"),
            (
                "managerId",
                if manager.is_empty() {
                    ""
                } else {
                    "00u1ann0000000000001"
                },
            ),
            ("manager", manager),
        ]
    };
    let rows = [
        user(
            "00u1ann0000000000001",
            "ACTIVE",
            "ann.archer@acme.example",
            "Ann",
            "Archer",
            "+1 415 555 0101",
            "",
        ),
        user(
            "00u1eve0000000000002",
            "LOCKED_OUT",
            "eve.ellis@acme.example",
            "Eve",
            "Ellis",
            "",
            "ann.archer@acme.example",
        ),
        user(
            "00u1fay0000000000003",
            "SUSPENDED",
            "fay.ford@acme.example",
            "Fay",
            "Ford",
            "",
            "ann.archer@acme.example",
        ),
        user(
            "00u1gus0000000000004",
            "DEPROVISIONED",
            "gus.gray@acme.example",
            "Gus",
            "Gray",
            "(415) 555-0104",
            "",
        ),
        user(
            "00u1hal0000000000005",
            "STAGED",
            "hal.hart@acme.example",
            "Hal",
            "Hart",
            "",
            "eve.ellis@acme.example",
        ),
    ];
    let refs: Vec<&[(&str, &str)]> = rows.iter().map(Vec::as_slice).collect();
    let v = env.import_json("okta.csv", &file(OKTA, &refs));
    assert_clean(&v, "okta");
    assert_users(
        &env,
        &[
            (
                "ann.archer@acme.example",
                "Ann",
                "Archer",
                "ann.archer@acme.example",
                "true",
                "",
                "+1 415 555 0101",
            ),
            (
                "eve.ellis@acme.example",
                "Eve",
                "Ellis",
                "eve.ellis@acme.example",
                "true",
                "ann.archer@acme.example",
                "",
            ),
            (
                "fay.ford@acme.example",
                "Fay",
                "Ford",
                "fay.ford@acme.example",
                "false",
                "ann.archer@acme.example",
                "",
            ),
            (
                "gus.gray@acme.example",
                "Gus",
                "Gray",
                "gus.gray@acme.example",
                "false",
                "",
                "(415) 555-0104",
            ),
            (
                "hal.hart@acme.example",
                "Hal",
                "Hart",
                "hal.hart@acme.example",
                "true",
                "eve.ellis@acme.example",
                "",
            ),
        ],
    );
}

#[test]
fn okta_unknown_status_names_the_accepted_values() {
    let env = Env::new("");
    let text = file(
        OKTA,
        &[&[
            ("login", "x@acme.example"),
            ("email", "x@acme.example"),
            ("status", "GONE"),
        ]],
    );
    let v = env.import_json("okta.csv", &text);
    assert_eq!(v["layout"], "okta");
    let e = &v["errors"][0];
    assert_eq!(e["code"], "invalid_enabled", "{v:#}");
    let msg = e["message"].as_str().unwrap();
    for word in ["ACTIVE", "SUSPENDED", "DEPROVISIONED", "LOCKED_OUT"] {
        assert!(msg.contains(word), "{msg}");
    }
}

const ONEROSTER_PASSWORDS: &[&str] = &["Tr0ub4dor&3", "correct-horse-battery"];

/// A users.csv row; one argument per column that varies.
#[allow(clippy::too_many_arguments)]
fn oneroster_row<'a>(
    id: &'a str,
    status: &'a str,
    enabled: &'a str,
    role: &'a str,
    username: &'a str,
    first: &'a str,
    last: &'a str,
    sms: &'a str,
    password: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("sourcedId", id),
        ("status", status),
        ("dateLastModified", "2026-11-30T06:00:00.000Z"),
        ("enabledUser", enabled),
        ("orgSourcedIds", "org-1"),
        ("role", role),
        ("username", username),
        ("userIds", "{LDAP:x}"),
        ("givenName", first),
        ("familyName", last),
        ("identifier", "S-1"),
        ("email", username),
        ("sms", sms),
        ("phone", "+1 415 555 0999"),
        ("grades", "09"),
        ("password", password),
    ]
}

#[test]
fn oneroster_sourced_id_is_the_key_and_tobedeleted_deletes() {
    let env = Env::new("");
    let before = [
        oneroster_row(
            "t-001",
            "active",
            "true",
            "teacher",
            "ann.archer@acme.example",
            "Ann",
            "Archer",
            "+1 415 555 0101",
            "",
        ),
        oneroster_row(
            "s-003",
            "active",
            "true",
            "student",
            "kim.kent@acme.example",
            "Kim",
            "Kent",
            "",
            "",
        ),
    ];
    let refs: Vec<&[(&str, &str)]> = before.iter().map(Vec::as_slice).collect();
    assert_clean(
        &env.import_json("users-1.csv", &file(ONEROSTER, &refs)),
        "oneroster",
    );
    let now = [
        oneroster_row(
            "t-001",
            "active",
            "true",
            "teacher",
            "ann.archer@acme.example",
            "Ann",
            "Archer",
            "+1 415 555 0101",
            ONEROSTER_PASSWORDS[0],
        ),
        oneroster_row(
            "s-002",
            "active",
            "false",
            "student",
            "jo.jones@acme.example",
            "Jo",
            "Jones",
            "",
            ONEROSTER_PASSWORDS[1],
        ),
        oneroster_row(
            "s-003",
            "tobedeleted",
            "true",
            "student",
            "kim.kent@acme.example",
            "Kim",
            "Kent",
            "",
            "",
        ),
    ];
    let refs: Vec<&[(&str, &str)]> = now.iter().map(Vec::as_slice).collect();
    let v = env.import_json("users.csv", &file(ONEROSTER, &refs));
    assert_clean(&v, "oneroster");
    assert_eq!(v["counts"]["deleted"], 1, "{v:#}");
    assert_users(
        &env,
        &[
            (
                "t-001",
                "Ann",
                "Archer",
                "ann.archer@acme.example",
                "true",
                "",
                "+1 415 555 0101",
            ),
            (
                "s-002",
                "Jo",
                "Jones",
                "jo.jones@acme.example",
                "false",
                "",
                "",
            ),
        ],
    );
    let all = users(&env);
    assert_eq!(all["t-001"]["roles"], "teacher");
}

const AD_DN_ANN: &str = "CN=Ann Archer,OU=Staff,DC=acme,DC=example";

/// A Get-ADUser row; one argument per column that varies.
#[allow(clippy::too_many_arguments)]
fn ad_row<'a>(
    sam: &'a str,
    dn: &'a str,
    first: &'a str,
    last: &'a str,
    email: &'a str,
    enabled: &'a str,
    manager: &'a str,
    mobile: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("accountExpires", "9223372036854775807"),
        ("CanonicalName", "acme.example/Staff/x"),
        ("City", "San Francisco"),
        ("CN", first),
        ("Country", "US"),
        ("countryCode", "840"),
        ("Created", "1/9/2024 10:00:00 AM"),
        ("DisplayName", first),
        ("DistinguishedName", dn),
        ("EmailAddress", email),
        ("EmployeeID", "E1"),
        ("Enabled", enabled),
        ("GivenName", first),
        ("mail", email),
        ("Manager", manager),
        (
            "MemberOf",
            "Microsoft.ActiveDirectory.Management.ADPropertyValueCollection",
        ),
        ("MobilePhone", mobile),
        ("Name", first),
        ("ObjectClass", "user"),
        ("ObjectGUID", "0b7e1e9c-0000-4000-8000-000000000001"),
        ("PasswordExpired", "False"),
        ("PasswordLastSet", "11/1/2026 9:00:00 AM"),
        ("PasswordNeverExpires", "False"),
        ("SamAccountName", sam),
        ("sn", last),
        ("Surname", last),
        (
            "userAccountControl",
            if enabled == "True" { "512" } else { "514" },
        ),
        ("UserPrincipalName", email),
    ]
}

#[test]
fn active_directory_export_csv_with_type_line_and_dn_managers() {
    let env = Env::new("");
    let rows = [
        // The report comes before its manager: order does not matter.
        ad_row(
            "bbaker",
            "CN=Bob Baker,OU=Staff,DC=acme,DC=example",
            "Bob",
            "Baker",
            "bob.baker@acme.example",
            "True",
            AD_DN_ANN,
            "+1 415 555 0102",
        ),
        ad_row(
            "aarcher",
            AD_DN_ANN,
            "Ann",
            "Archer",
            "ann.archer@acme.example",
            "True",
            "",
            "+1 415 555 0101",
        ),
        ad_row(
            "ccole",
            "CN=Cy Cole,OU=Leavers,DC=acme,DC=example",
            "Cy",
            "Cole",
            "cy.cole@acme.example",
            "False",
            "cn=ann archer, ou=staff,dc=acme,dc=example",
            "",
        ),
    ];
    let refs: Vec<&[(&str, &str)]> = rows.iter().map(Vec::as_slice).collect();
    let text = format!(
        "#TYPE Microsoft.ActiveDirectory.Management.ADUser\r\n{}",
        file(ACTIVE_DIRECTORY, &refs)
    );
    let v = env.import_json("ad.csv", &text);
    assert_clean(&v, "active_directory");
    assert_eq!(
        v["skipped_lines"],
        serde_json::json!(["#TYPE Microsoft.ActiveDirectory.Management.ADUser"])
    );
    assert_users(
        &env,
        &[
            (
                "aarcher",
                "Ann",
                "Archer",
                "ann.archer@acme.example",
                "true",
                "",
                "+1 415 555 0101",
            ),
            (
                "bbaker",
                "Bob",
                "Baker",
                "bob.baker@acme.example",
                "true",
                "aarcher",
                "+1 415 555 0102",
            ),
            (
                "ccole",
                "Cy",
                "Cole",
                "cy.cole@acme.example",
                "false",
                "aarcher",
                "",
            ),
        ],
    );
}

/// A later file names a manager by DN whom only an earlier file described:
/// the stored user's DN finds them.
#[test]
fn active_directory_manager_dn_of_a_user_from_an_earlier_file_resolves() {
    let env = Env::new("");
    let ann = ad_row(
        "aarcher",
        AD_DN_ANN,
        "Ann",
        "Archer",
        "ann.archer@acme.example",
        "True",
        "",
        "",
    );
    let v = env.import_json("ad1.csv", &file(ACTIVE_DIRECTORY, &[ann.as_slice()]));
    assert_clean(&v, "active_directory");
    let bob = ad_row(
        "bbaker",
        "CN=Bob Baker,OU=Staff,DC=acme,DC=example",
        "Bob",
        "Baker",
        "bob.baker@acme.example",
        "True",
        "CN=Ann Archer, OU=Staff, DC=acme, DC=example",
        "",
    );
    let v = env.import_json("ad2.csv", &file(ACTIVE_DIRECTORY, &[bob.as_slice()]));
    assert_clean(&v, "active_directory");
    let all = users(&env);
    assert_eq!(all["bbaker"]["reports_to"], "aarcher", "{all:?}");
    // Bob is now stored with his DN too: a third file reaches him.
    let cy = ad_row(
        "ccole",
        "CN=Cy Cole,OU=Staff,DC=acme,DC=example",
        "Cy",
        "Cole",
        "cy.cole@acme.example",
        "True",
        "CN=Bob Baker,OU=Staff,DC=acme,DC=example",
        "",
    );
    let v = env.import_json("ad3.csv", &file(ACTIVE_DIRECTORY, &[cy.as_slice()]));
    assert_clean(&v, "active_directory");
    assert_eq!(users(&env)["ccole"]["reports_to"], "bbaker");
}

#[test]
fn bamboohr_report_below_title_lines() {
    let env = Env::new("");
    let body = file(
        BAMBOOHR,
        &[
            &[
                ("Employee #", "1001"),
                ("Status", "Active"),
                ("First Name", "Ann"),
                ("Last Name", "Archer"),
                ("Preferred Name", "Annie"),
                ("Work Email", "ann.archer@acme.example"),
                ("Home Email", "ann@home.example"),
                ("Mobile Phone", "415-555-0101"),
                ("Job Title", "CEO"),
                ("Country", "United States"),
                ("Hire Date", "2019-04-01"),
            ],
            &[
                ("Employee #", "1002"),
                ("Status", "Active"),
                ("First Name", "Bob"),
                ("Last Name", "Baker"),
                ("Work Email", "bob.baker@acme.example"),
                ("Supervisor", "Archer, Ann"),
                ("Supervisor EID", "1001"),
            ],
            &[
                ("Employee #", "1003"),
                ("Status", "Inactive"),
                ("First Name", "Cy"),
                ("Last Name", "Cole"),
                ("Work Email", "cy.cole@acme.example"),
                ("Supervisor", "Archer, Ann"),
                ("Supervisor EID", "1001"),
            ],
        ],
    );
    let text = format!("Active Employees Report\r\nGenerated 2026-11-30 06:00\r\n\r\n{body}");
    let v = env.import_json("bamboo.csv", &text);
    assert_clean(&v, "bamboohr");
    assert_eq!(
        v["skipped_lines"],
        serde_json::json!(["Active Employees Report", "Generated 2026-11-30 06:00"])
    );
    assert_users(
        &env,
        &[
            (
                "1001",
                "Ann",
                "Archer",
                "ann.archer@acme.example",
                "true",
                "",
                "415-555-0101",
            ),
            (
                "1002",
                "Bob",
                "Baker",
                "bob.baker@acme.example",
                "true",
                "1001",
                "",
            ),
            (
                "1003",
                "Cy",
                "Cole",
                "cy.cole@acme.example",
                "false",
                "1001",
                "",
            ),
        ],
    );
}

#[test]
fn title_lines_keep_spreadsheet_row_numbers() {
    let env = Env::new("");
    // Title (row 1), blank (row 2), header (row 3), rows 4 and 5.
    let text = "Active Employees Report,,\r\n\r\nEmployee ID,Email,Status\r\nE1,ann@acme.example,Active\r\nE2,not-an-email,Active\r\n";
    let v = env.import_json("report.csv", text);
    assert_eq!(v["layout"], "generic");
    assert_eq!(
        v["skipped_lines"],
        serde_json::json!(["Active Employees Report"])
    );
    assert_eq!(v["counts"]["added"], 1, "{v:#}");
    assert_eq!(v["errors"][0]["row"], 5, "{v:#}");
    assert_eq!(v["errors"][0]["code"], "invalid_email");
}

#[test]
fn a_first_line_naming_a_field_is_the_header_as_before() {
    // No title-line search when the first line maps a field: the file is
    // refused as it always was.
    let env = Env::new("");
    let v = env.import_json(
        "x.csv",
        "email,notes\r\nuserId,email\r\nU1,a@acme.example\r\n",
    );
    assert_eq!(v["file_error"]["code"], "missing_required_column", "{v:#}");
    assert_eq!(v["skipped_lines"], serde_json::json!([]));
}

#[test]
fn workday_worker_report_uses_legal_names_and_manager_ids() {
    let env = Env::new("");
    let text = file(
        WORKDAY,
        &[
            &[
                ("Employee ID", "21001"),
                ("Worker", "Ann Archer"),
                ("Legal First Name", "Ann"),
                ("Legal Last Name", "Archer"),
                ("Preferred First Name", "Annie"),
                ("Primary Work Email", "ann.archer@acme.example"),
                ("Primary Work Mobile Phone", "+1 (415) 555-0101"),
                ("Business Title", "CEO"),
                ("Active Status", "1"),
            ],
            &[
                ("Employee ID", "21002"),
                ("Worker", "Bob Baker"),
                ("Legal First Name", "Robert"),
                ("Legal Last Name", "Baker"),
                ("Preferred First Name", "Bob"),
                ("Preferred Last Name", "Baker"),
                ("Primary Work Email", "bob.baker@acme.example"),
                ("Manager", "Ann Archer"),
                ("Manager Employee ID", "21001"),
                ("Active Status", "Yes"),
            ],
            &[
                ("Employee ID", "21003"),
                ("Worker", "Cy Cole"),
                ("Legal First Name", "Cy"),
                ("Legal Last Name", "Cole"),
                ("Primary Work Email", "cy.cole@acme.example"),
                ("Manager", "Ann Archer"),
                ("Manager Employee ID", "21001"),
                ("Termination Date", "2026-10-31"),
                ("Active Status", "0"),
            ],
        ],
    );
    let v = env.import_json("workday.csv", &text);
    assert_clean(&v, "workday");
    assert_users(
        &env,
        &[
            (
                "21001",
                "Ann",
                "Archer",
                "ann.archer@acme.example",
                "true",
                "",
                "+1 (415) 555-0101",
            ),
            (
                "21002",
                "Robert",
                "Baker",
                "bob.baker@acme.example",
                "true",
                "21001",
                "",
            ),
            (
                "21003",
                "Cy",
                "Cole",
                "cy.cole@acme.example",
                "false",
                "21001",
                "",
            ),
        ],
    );
}

#[test]
fn adp_workforce_now_position_status_and_reports_to() {
    let env = Env::new("");
    let text = file(
        ADP,
        &[
            &[
                ("Associate ID", "G3ANN0001"),
                ("Position ID", "ACM000101"),
                ("File Number", "000101"),
                ("First Name", "Ann"),
                ("Last Name", "Archer"),
                ("Work Contact: Work Email", "ann.archer@acme.example"),
                ("Personal Contact: Personal Email", "ann@home.example"),
                ("Personal Contact: Personal Mobile", "(415) 555-0101"),
                ("Position Status", "Active"),
            ],
            &[
                ("Associate ID", "G3BOB0002"),
                ("First Name", "Bob"),
                ("Last Name", "Baker"),
                ("Work Contact: Work Email", "bob.baker@acme.example"),
                ("Position Status", "Leave"),
                ("Reports To Name", "Archer, Ann"),
                ("Reports To Associate ID", "G3ANN0001"),
            ],
            &[
                ("Associate ID", "G3CY00003"),
                ("First Name", "Cy"),
                ("Last Name", "Cole"),
                ("Work Contact: Work Email", "cy.cole@acme.example"),
                ("Position Status", "Terminated"),
                ("Termination Date", "10/31/2026"),
                ("Reports To Name", "Archer, Ann"),
                ("Reports To Associate ID", "G3ANN0001"),
            ],
        ],
    );
    let v = env.import_json("adp.csv", &text);
    assert_clean(&v, "adp");
    assert_users(
        &env,
        &[
            (
                "G3ANN0001",
                "Ann",
                "Archer",
                "ann.archer@acme.example",
                "true",
                "",
                "(415) 555-0101",
            ),
            (
                "G3BOB0002",
                "Bob",
                "Baker",
                "bob.baker@acme.example",
                "true",
                "G3ANN0001",
                "",
            ),
            (
                "G3CY00003",
                "Cy",
                "Cole",
                "cy.cole@acme.example",
                "false",
                "G3ANN0001",
                "",
            ),
        ],
    );
}

#[test]
fn passwords_never_land_in_the_store_the_output_or_the_failed_rows() {
    let env = Env::new("notify = \"always\"");
    // One Google row fails (a bad email): its cells go to the failed rows.
    let text = google_file().replace("cy.cole@acme.example", "cy.cole(at)acme.example");
    let path = env.write("google.csv", &text);
    let out = env.import(&path, &["--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["counts"]["failed"], 1, "{v:#}");
    let human = env.import(&path, &["--dry-run"]);
    assert!(
        stdout(&human).contains("passwords or hashes"),
        "{}",
        stdout(&human)
    );
    let id = v["job"].as_i64().unwrap().to_string();
    let failed = env.run(&["jobs", "show", &id, "--failed-csv"]);
    let failed_csv = stdout(&failed);
    assert!(
        failed_csv.contains("cy.cole(at)acme.example"),
        "{failed_csv}{}",
        stderr(&failed)
    );
    assert!(
        failed_csv.starts_with("\u{feff}First Name [Required],"),
        "{failed_csv}"
    );
    let ora = env.write(
        "oneroster.csv",
        file(
            ONEROSTER,
            &[&oneroster_row(
                "s-9",
                "active",
                "true",
                "student",
                "s9@acme.example",
                "S",
                "Nine",
                "",
                ONEROSTER_PASSWORDS[0],
            )],
        ),
    );
    let out2 = env.import(&ora, &[]);
    let flushed = env.run(&["mail", "flush"]);
    assert!(flushed.status.success(), "{}", stderr(&flushed));
    let mut seen = everything_kept(&env);
    // The mail, decoded (an attachment is base64 in the .eml).
    let mail_dir = env.path("data").join("mail");
    let mut bodies = String::new();
    for entry in std::fs::read_dir(&mail_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let m = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        for part in m.parts.iter() {
            seen.extend(part.contents());
        }
        bodies.push_str(&m.body_text(0).unwrap_or_default());
    }
    assert!(
        bodies.contains("Read as an export of Google Workspace"),
        "{bodies}"
    );
    assert!(
        bodies.contains("Passwords: columns holding passwords"),
        "{bodies}"
    );
    for o in [&out, &human, &failed, &out2, &flushed] {
        seen.extend(&o.stdout);
        seen.extend(&o.stderr);
    }
    for pw in GOOGLE_PASSWORDS.iter().chain(ONEROSTER_PASSWORDS) {
        assert!(
            !contains(&seen, pw),
            "password {pw:?} was kept or shown somewhere"
        );
    }
    // The store does hold the rest of the failed row, so the search above
    // would have found a password kept with it.
    assert!(contains(&everything_kept(&env), "cy.cole(at)acme.example"));
}

#[test]
fn a_pinned_layout_is_used_and_an_unknown_one_is_a_config_error() {
    // OneRoster without its signature column `enabledUser`: only the pin
    // makes `sourcedId` the key and `status` the transaction.
    let env = Env::new("layout = \"oneroster\"");
    let text = "sourcedId,status,username,givenName,familyName,email\r\n\
                s-1,active,ann,Ann,Archer,ann@acme.example\r\n";
    let v = env.import_json("users.csv", text);
    assert_clean(&v, "oneroster");
    assert!(users(&env).contains_key("s-1"));

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        crate::util::config_text(dir.path(), "layout = \"sap\""),
    )
    .unwrap();
    let out = std::process::Command::new(crate::util::bin())
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("tenants.acme.layout = \"sap\" is not one of"),
        "{err}"
    );
    assert!(err.contains("\"oneroster\""), "{err}");
}

#[test]
fn template_prints_each_layouts_documented_header() {
    let env = Env::new("");
    for (name, header) in [
        ("google_workspace", GOOGLE),
        ("entra", ENTRA),
        ("okta", OKTA),
        ("oneroster", ONEROSTER),
        ("active_directory", ACTIVE_DIRECTORY),
        ("bamboohr", BAMBOOHR),
        ("workday", WORKDAY),
        ("adp", ADP),
    ] {
        let out = env.run(&["template", "--layout", name]);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut r = csv::Reader::from_reader(out.stdout.as_slice());
        let got: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
        assert_eq!(got, header, "{name}");
    }
    let bad = env.run(&["template", "--layout", "sap"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_generic_file_with_the_same_columns_is_still_ambiguous() {
    // Without a layout, two columns for one field refuse the file as ever.
    let env = Env::new("");
    let v = env.import_json(
        "x.csv",
        "userId,username,email\r\nU1,ann,a@acme.example\r\n",
    );
    assert_eq!(v["file_error"]["code"], "ambiguous_header", "{v:#}");
    assert_eq!(v["layout"], Value::Null);
}

/// The real daemon, at debug level, imports a Google export found at
/// start-up: no password of it reaches any log line.
#[test]
fn a_google_export_leaves_no_password_in_the_daemons_log() {
    use crate::util::daemon::{serve_config, Serve};
    let env = crate::util::SftpEnv::new("", "");
    let config_path = serve_config(&env, "");
    let root = env.config.tenant_root(TENANT);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("google.csv"), google_file()).unwrap();
    let mut serve = Serve::start(&config_path);
    serve.wait_for("archived", &[("file", "google.csv")]);
    serve.signal("TERM");
    assert!(serve.wait_exit_keeping_log().success());
    let log: String = serve.seen.iter().map(|v| v.to_string() + "\n").collect();
    assert!(
        log.contains("google_workspace") || log.contains("job finished"),
        "the log has the job: {log}"
    );
    for pw in GOOGLE_PASSWORDS {
        assert!(!log.contains(pw), "password {pw:?} is in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_export_dropped_in_the_inbox_leaves_no_password_in_results() {
    use crate::util::daemon::{names_in, summary, Running};
    let env = Env::new("");
    let mut config = env.config.clone();
    config.settle = std::time::Duration::from_millis(300);
    let paths = userdrop::daemon::Paths {
        scheduler: false,
        ..Default::default()
    };
    let mut d = Running::start(config.clone(), false, paths).await;
    let root = config.tenant_root(TENANT);
    let text = google_file().replace("cy.cole@acme.example", "cy.cole(at)acme.example");
    std::fs::write(root.join("google.csv"), text).unwrap();
    let done = d.next_done("the Google export").await;
    d.stop().await;
    let s = summary(&root, done.job);
    assert_eq!(s["layout"], "google_workspace", "{s:#}");
    assert_eq!(s["counts"]["failed"], 1, "{s:#}");
    let results = root.join("results");
    let mut kept = Vec::new();
    let mut errors_csv = String::new();
    for name in names_in(&results) {
        let bytes = std::fs::read(results.join(&name)).unwrap();
        if name.ends_with(".errors.csv") {
            errors_csv = String::from_utf8(bytes.clone()).unwrap();
        }
        kept.extend(bytes);
    }
    assert!(
        errors_csv.contains("cy.cole(at)acme.example"),
        "the failed row is in results/: {errors_csv}"
    );
    for pw in GOOGLE_PASSWORDS {
        assert!(!contains(&kept, pw), "password {pw:?} is in results/");
    }
}

#[test]
fn a_type_line_is_skipped_even_when_the_header_below_is_refused() {
    // The real header is judged (and named), not the #TYPE line.
    let env = Env::new("");
    let text = "#TYPE Microsoft.ActiveDirectory.Management.ADUser\r\n\
                \"DistinguishedName\",\"Enabled\",\"SamAccountName\"\r\n\
                \"CN=Ann,DC=acme\",\"True\",\"ann\"\r\n";
    let v = env.import_json("ad.csv", text);
    assert_eq!(v["file_error"]["code"], "missing_required_column", "{v:#}");
    assert_eq!(v["file_error"]["field"], "email");
    assert_eq!(
        v["columns"],
        serde_json::json!(["DistinguishedName", "Enabled", "SamAccountName"])
    );
}
