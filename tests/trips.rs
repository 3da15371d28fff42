//! What customers and operators trip over, found by trying userdrop as a
//! new user would: one regression test per trip, through the real binary,
//! named after what broke.

use crate::util::{repo, stderr, stdout, Env, TENANT};

/// `config.example.toml` says its password hash is the hash of "change me";
/// a new operator who copies it must be able to log in with that.
#[test]
fn example_config_password_hash_is_the_hash_of_change_me() {
    use argon2::{PasswordHash, PasswordVerifier};
    let text = std::fs::read_to_string(repo().join("config.example.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("password_hash"))
        .expect("the example has a password_hash");
    let hash = line.split('"').nth(1).expect("a quoted hash");
    let parsed = PasswordHash::new(hash).expect("an argon2 PHC string");
    assert!(
        argon2::Argon2::default()
            .verify_password(b"change me", &parsed)
            .is_ok(),
        "{hash} is not the hash of \"change me\""
    );
}

/// `ACME` in the tenant column of tenant `acme` is the same tenant.
#[test]
fn tenant_column_in_another_case_is_not_wrong_tenant() {
    let env = Env::new("");
    let upper = TENANT.to_uppercase();
    let v = env.import_json(
        "users.csv",
        &format!("user_id,email,tenant\nU1,u1@example.com,{upper}\nU2,u2@example.com,other\n"),
    );
    assert_eq!(v["counts"]["added"], 1, "{v:#}");
    assert_eq!(
        v["reasons"],
        serde_json::json!({"wrong_tenant": 1}),
        "{v:#}"
    );
    assert_eq!(v["errors"][0]["row"], 3, "{v:#}");
}

/// Other drop-folder products name delimiters `COMMA`, `SEMI_COLON`,
/// `PIPE`, `HYPHEN`: the config accepts them, in any case.
#[test]
fn upper_case_delimiter_names_are_accepted_in_the_config() {
    for (name, sep) in [("SEMI_COLON", ';'), ("PIPE", '|'), ("Comma", ',')] {
        let env = Env::new(&format!("delimiter = \"{name}\""));
        let check = env.run(&["check-config"]);
        assert!(check.status.success(), "{name}: {}", stderr(&check));
        let v = env.import_json(
            "users.csv",
            &format!("user_id{sep}email\nU1{sep}u1@example.com\n"),
        );
        assert_eq!(v["delimiter"], sep.to_string(), "{name}: {v:#}");
        assert_eq!(v["counts"]["added"], 1, "{name}: {v:#}");
    }
    let env = Env::new("");
    let refused = crate::util::config_text(env.path("").as_path(), "delimiter = \"COLON\"");
    std::fs::write(&env.config_path, refused).unwrap();
    let check = env.run(&["check-config"]);
    assert!(!check.status.success(), "COLON is not a delimiter name");
    assert!(
        stderr(&check).contains("semicolon"),
        "the message lists the names: {}",
        stderr(&check)
    );
}

/// `userdrop jobs | head -1` and `users export | head -1`: the reader goes
/// away, and userdrop exits 0 without a word (it panicked, or printed
/// "Broken pipe" and exited 1).
#[test]
fn output_into_a_closed_pipe_exits_quietly() {
    let env = Env::new("");
    let file = env.write("users.csv", crate::util::users_csv(50, "p"));
    assert!(env.import(&file, &[]).status.success());
    for args in [
        &["jobs"][..],
        &["jobs", "--json"],
        &["users", "export", "--tenant", TENANT],
        &["mail"],
    ] {
        // A pipe whose reading end is closed before userdrop starts: its
        // first write fails with EPIPE, deterministically.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(crate::util::bin())
            .arg("--config")
            .arg(&env.config_path)
            .args(args)
            .env_remove("USERDROP_CONFIG")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?} said something");
    }
}

/// `template` without `--tenant` picked the first tenant silently; with
/// more than one it must be asked for.
#[test]
fn template_without_tenant_is_refused_when_there_are_several() {
    let env = Env::new("");
    let one = env.run(&["template"]);
    assert!(one.status.success(), "one tenant: {}", stderr(&one));
    let text =
        crate::util::config_text_tenants(env.path("").as_path(), "", &[(TENANT, ""), ("beta", "")]);
    std::fs::write(&env.config_path, text).unwrap();
    let two = env.run(&["template"]);
    assert_eq!(two.status.code(), Some(2), "{}", stderr(&two));
    assert!(
        stderr(&two).contains("--tenant") && stderr(&two).contains("beta"),
        "{}",
        stderr(&two)
    );
    let named = env.run(&["template", "--tenant", "beta"]);
    assert!(named.status.success(), "{}", stderr(&named));
}

/// `jobs --limit 0` said "no jobs yet" although there were jobs.
#[test]
fn jobs_and_mail_refuse_a_limit_below_one() {
    let env = Env::new("");
    let file = env.write("users.csv", crate::util::users_csv(2, "l"));
    assert!(env.import(&file, &[]).status.success());
    for args in [
        &["jobs", "--limit", "0"][..],
        &["jobs", "--limit=-3"],
        &["mail", "--limit", "0"],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("--limit"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains("no jobs yet"), "{args:?}");
    }
    assert!(stdout(&env.run(&["jobs", "--limit", "1"])).contains("users.csv"));
}

/// Log fields printed `listen=Some(127.0.0.1:2222)`, and the `job
/// finished` line lacked `roles_added`.
#[test]
fn log_lines_carry_plain_addresses_and_roles_added() {
    use crate::util::daemon::{serve_config, Serve};
    let env = crate::util::SftpEnv::new("", "");
    let config_path = serve_config(&env, "");
    let root = env.config.tenant_root(TENANT);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("roles.csv"),
        "user_id,email,roles\nU1,u1@example.com,admin|staff\n",
    )
    .unwrap();
    let mut serve = Serve::start(&config_path);
    let listening = serve.wait_for("SFTP server listening", &[]);
    assert_eq!(
        listening["fields"]["listen"],
        format!("127.0.0.1:{}", serve.port),
        "{listening}"
    );
    let finished = serve.wait_for("job finished", &[("file", "roles.csv")]);
    assert_eq!(finished["fields"]["roles_added"], 2, "{finished}");
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
}

/// A mail for a file where every row failed said "was imported, but some
/// rows failed … The other rows were applied".
#[test]
fn mail_for_a_file_where_every_row_failed_says_nothing_was_applied() {
    let env = Env::new("");
    let file = env.write("bad.csv", "user_id,email\nU1,not-an-address\nU2,\n");
    let out = env.import(&file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let shown = env.run(&["mail", "show", "1"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = String::from_utf8_lossy(&shown.stdout).replace("=\r\n", "");
    assert!(
        text.contains("every row failed, so nothing in it was applied")
            && text.contains("Nothing was changed"),
        "{text}"
    );
    assert!(!text.contains("The other rows were applied"), "{text}");
    assert!(!text.contains("was imported, but"), "{text}");
}

/// `missing_required_column` said `email (a column named e.g. email, …)`;
/// a hyphen-separated file under `delimiter = "auto"` got no hint; the
/// mobile-number error did not state the rule.
#[test]
fn messages_name_each_field_once_hint_at_hyphens_and_state_the_phone_rule() {
    let env = Env::new("");
    let v = env.import_json("a.csv", "user_id,name\nU1,x\n");
    let m = v["file_error"]["message"].as_str().unwrap().to_string();
    // The field, then other names: never the field's own name again.
    assert!(m.contains("no column for email (or e.g. "), "{m}");
    assert!(
        !m.contains("e.g. email,") && !m.contains("e.g. e-mail,"),
        "{m}"
    );

    let v = env.import_json("h.csv", "user_id-email\nU1-a@example.com\n");
    let m = v["file_error"]["message"].as_str().unwrap();
    assert!(m.contains("delimiter = \"hyphen\""), "{m}");

    let v = env.import_json(
        "m.csv",
        "user_id,email,mobile_number\nU1,u1@example.com,12\n",
    );
    let m = v["errors"][0]["message"].as_str().unwrap();
    assert!(m.contains("5 to 20 digits"), "{m}");
}

/// With `key = "mobile_number"` a file without a user id column (the
/// layout of the product's own sample) was refused: the user id is
/// optional unless it is the key.
#[test]
fn user_id_is_optional_when_the_key_is_the_mobile_number() {
    let env = Env::new("key = \"mobile_number\"");
    let v = env.import_json(
        "mobile.csv",
        "mobile_number,email,first_name\n+1 415 555 0101,ann@example.com,Ann\n",
    );
    assert_eq!(v["status"], "ok", "{v:#}");
    assert_eq!(v["counts"]["added"], 1, "{v:#}");
}

/// OpenSSH's `scp` (SFTP underneath) exited 1 after every successful
/// upload: the server closed the channel at the client's EOF without an
/// exit status, so a nightly script checking `$?` saw a failure (and could
/// upload twice).
#[tokio::test]
async fn scp_upload_exits_zero() {
    use crate::util::clients::{client, key_auth, require, run, show, ssh_common};
    use crate::util::daemon::{serve_config, Serve};
    require("scp", "openssh-client");
    let env = crate::util::SftpEnv::new("", "");
    let config_path = serve_config(&env, "");
    let mut serve = Serve::start(&config_path);
    env.write("local.csv", crate::util::users_csv(3, "s"));
    for (flags, name) in [(&[][..], "plain.csv"), (&["-p"][..], "kept.csv")] {
        let mut cmd = client(&env, "scp");
        cmd.args(ssh_common())
            .args(key_auth(&env))
            .args(flags)
            .args(["-P", &serve.port.to_string(), "local.csv"])
            .arg(format!("{}@127.0.0.1:{name}", crate::util::ACME_USER));
        let out = run(cmd, "scp").await;
        assert_eq!(out.status.code(), Some(0), "scp {flags:?}: {}", show(&out));
        serve.wait_for("archived", &[("file", name)]);
    }
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
}
