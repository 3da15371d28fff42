//! The config's checks, each problem reported at once.

use super::*;

#[test]
fn example_and_embedded_default_are_valid() {
    Config::parse(EXAMPLE, "example").unwrap();
    let c = Config::parse(EMBEDDED_DEFAULT, "embedded").unwrap();
    assert!(c.tenants.contains_key("demo"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
        workers = 0
        schedule = "every five minutes"
        [sftp]
        idle_timeout = "soon"
        [tenants.acme]
        failed_import_email = ["not-an-address"]
        mode = "merge"
        delimiter = "colon"
        [tenants.beta]
        failed_import_email = "it@beta.example"
        colour = "blue"
    "#;
    let err = Config::parse(text, "t.toml").unwrap_err();
    let all = err.problems.join("\n");
    for needle in [
        "data_dir is required",
        "workers = 0",
        "schedule",
        "sftp.idle_timeout",
        "not-an-address",
        "tenants.acme.mode = \"merge\"",
        "tenants.acme.delimiter = \"colon\"",
        "colour",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert!(err.problems.len() >= 8, "{all}");
}

#[test]
fn mail_settings_and_invitations() {
    let c = Config::parse(EXAMPLE, "example").unwrap();
    let t = c.tenant("acme").unwrap();
    let inv = t
        .invitation
        .as_ref()
        .expect("the example has an invitation");
    assert!(inv.link.is_some());
    assert_eq!(t.outgoing.from, "User Import <noreply@example.com>");
    assert_eq!(c.mail.retry_initial, Duration::from_secs(30));
    assert_eq!(c.mail.retry_max, Duration::from_secs(1800));
    let text = r#"
        data_dir = "/tmp/x"
        [smtp]
        host = "mail.example.com"
        security = "tls"
        ca_file = "/etc/ca.pem"
        retry_initial = "10m"
        retry_max = "1m"
        [tenants.acme]
        failed_import_email = "it@acme.example"
        [tenants.acme.invitation]
        subject = "Hi {first_name}"
    "#;
    let err = Config::parse(text, "t").unwrap_err().problems.join("\n");
    assert!(err.contains("retry_max must be at least"), "{err}");
    assert!(err.contains("invitation.body is required"), "{err}");
    let ok = text.replace("retry_max = \"1m\"", "").replace(
        "subject = \"Hi {first_name}\"",
        "subject = \"Hi\"\nbody = \"b\"",
    );
    let c = Config::parse(&ok, "t").unwrap();
    assert!(matches!(
        c.mail.transport,
        Transport::Smtp {
            port: 465,
            ca_file: Some(_),
            ..
        }
    ));
}

#[test]
fn tenant_defaults_follow_the_spec() {
    let c = Config::parse(
        "data_dir = \"/tmp/x\"\n[tenants.acme]\nfailed_import_email = \"it@acme.example\"\n",
        "t",
    )
    .unwrap();
    let t = c.tenant("acme").unwrap();
    assert_eq!(t.mode, Mode::Upsert);
    assert_eq!(t.on_error, OnError::SkipRows);
    assert_eq!(t.max_missing_percent, 10.0);
    assert_eq!(t.key(), KeyField::UserId);
    assert!(t.accepts("Users.CSV") && t.accepts("export.txt") && !t.accepts("users.xlsx"));
    assert_eq!(t.max_file_size, 1 << 30);
    assert_eq!(c.sftp.ban_after, 10);
    assert_eq!(c.sftp.ban_for, Duration::from_secs(900));
    assert!(matches!(c.mail.transport, Transport::File { .. }));
}

#[test]
fn provisioning_needs_a_url_and_one_token_source() {
    let ok = r#"
        data_dir = "/tmp/x"
        [tenants.acme]
        failed_import_email = "it@acme.example"
        [tenants.acme.provision]
        scim_url = "https://app.example.com/scim/v2/"
        token_file = "/etc/userdrop/acme.token"
        ca_file = "/etc/userdrop/ca.pem"
    "#;
    let c = Config::parse(ok, "t.toml").unwrap();
    let p = c.tenant("acme").unwrap().provision.as_ref().unwrap();
    assert_eq!(p.scim_url, "https://app.example.com/scim/v2");
    assert_eq!(
        p.token,
        SecretSource::File(PathBuf::from("/etc/userdrop/acme.token"))
    );
    let bad = r#"
        data_dir = "/tmp/x"
        [tenants.acme]
        failed_import_email = "it@acme.example"
        [tenants.acme.provision]
        scim_url = "app.example.com"
        token_env = "T"
        token_file = "/t"
        colour = "blue"
        [tenants.beta]
        failed_import_email = "it@beta.example"
        [tenants.beta.provision]
        ca_file = "/ca.pem"
    "#;
    let err = Config::parse(bad, "t.toml").unwrap_err();
    let all = err.problems.join("\n");
    for needle in [
        "tenants.acme.provision.scim_url = \"app.example.com\" is not an http(s) URL",
        "tenants.acme.provision: set token_env or token_file, not both",
        "tenants.acme.provision.colour",
        "tenants.beta.provision.scim_url is required",
        "tenants.beta.provision: set token_env",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert!(
        Config::parse(EMBEDDED_DEFAULT, "embedded").unwrap().tenants["demo"]
            .provision
            .is_none()
    );
}
