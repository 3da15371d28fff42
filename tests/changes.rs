//! The change ledger and the change feed against the real `userdrop
//! serve`: files uploaded over SFTP, the feed read with curl (and `userdrop
//! changes`), the per-job CSV from `jobs show --changes`. Each test asserts
//! the changes recorded, in order, with what they changed.

use std::process::Command;

use crate::util::api::Api;
use crate::util::clients::{assert_ok, sftp_key};
use crate::util::{bin, sql, stderr, stdout, TENANT};

const FIRST: &str = "userId,email,firstName,lastName\n\
u1,u1@example.com,Ann,One\nu2,u2@example.com,Bob,Two\nu3,u3@example.com,Cy,Three\n\
u4,u4@example.com,Di,Four\nu5,u5@example.com,Ed,Five\nu6,u6@example.com,Flo,Six\n";

/// The second file: u1–u3 renamed, u4 deleted by a DELETE row, u5 and u6
/// absent (a sync deactivates them), u7 new.
const SECOND: &str = "userId,email,firstName,lastName,action\n\
u1,u1@example.com,Anne,One,\nu2,u2@example.com,Bobby,Two,\nu3,u3@example.com,Cyd,Three,\n\
u4,,,,DELETE\nu7,u7@example.com,Gus,Seven,\n";

/// Every change of the feed after `after`, paged `limit` at a time.
fn read_feed(api: &Api, mut after: i64, limit: usize) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    loop {
        let (code, v) = api.json(
            &["-H", &api.acme()],
            &format!("/v1/tenants/acme/changes?after={after}&limit={limit}"),
        );
        assert_eq!(code, 200, "{v:#}");
        let page = v["changes"].as_array().unwrap().clone();
        assert!(page.len() <= limit);
        if page.is_empty() {
            assert_eq!(v["next"], after, "an empty page keeps the cursor");
            return all;
        }
        after = v["next"].as_i64().unwrap();
        assert_eq!(page.last().unwrap()["seq"], after);
        all.extend(page);
    }
}

fn ops(changes: &[serde_json::Value]) -> Vec<(String, String)> {
    changes
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap().to_string(),
                c["op"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A sync file that updates 3 users, deletes 1 and leaves 2 out: the
/// feed gives exactly those changes after the first file's creations, in
/// order (a file's rows as they were applied, then the sync's), across pages that lose and repeat nothing; `jobs show --changes`
/// and `userdrop changes` say the same; a long poll answers when the next
/// job lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_gives_every_change_of_every_job_in_order() {
    let mut api = Api::start("", "", "mode = \"sync\"\nmax_missing_percent = 50\n");
    api.env.write("first.csv", FIRST);
    assert_ok(
        &sftp_key(&api.env, api.serve.port, "put first.csv\n", &[]).await,
        "sftp put",
    );
    api.serve
        .wait_for("archived", &[("tenant", TENANT), ("file", "first.csv")]);
    api.env.write("second.csv", SECOND);
    assert_ok(
        &sftp_key(&api.env, api.serve.port, "put second.csv\n", &[]).await,
        "sftp put",
    );
    api.serve
        .wait_for("archived", &[("tenant", TENANT), ("file", "second.csv")]);

    let all = read_feed(&api, 0, 4);
    let want: Vec<(String, String)> = [
        ("u1", "created"),
        ("u2", "created"),
        ("u3", "created"),
        ("u4", "created"),
        ("u5", "created"),
        ("u6", "created"),
        ("u1", "updated"),
        ("u2", "updated"),
        ("u3", "updated"),
        ("u4", "deleted"),
        ("u7", "created"),
        ("u5", "deactivated"),
        ("u6", "deactivated"),
    ]
    .iter()
    .map(|(k, o)| (k.to_string(), o.to_string()))
    .collect();
    assert_eq!(ops(&all), want);
    let seqs: Vec<i64> = all.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The same in one page as in pages of 4.
    assert_eq!(ops(&read_feed(&api, 0, 1000)), want);

    let u1 = &all[6];
    assert_eq!(u1["changed_fields"], serde_json::json!(["first_name"]));
    assert_eq!(u1["before"]["first_name"], "Ann");
    assert_eq!(u1["user"]["first_name"], "Anne", "the user as stored now");
    assert_eq!(all[9]["user"], serde_json::Value::Null, "deleted");
    assert_eq!(all[9]["before"]["email"], "u4@example.com");
    assert_eq!(all[10]["user"]["first_name"], "Gus");
    assert_eq!(all[11]["user"]["enabled"], false);
    let job2 = u1["job"].as_i64().unwrap();
    assert!(all[6..].iter().all(|c| c["job"] == job2));
    assert!(all[..6].iter().all(|c| c["job"] != job2));

    // `jobs show --changes`: one line per changed field.
    let config = api.env.path("userdrop.toml");
    let out = Command::new(bin())
        .arg("--config")
        .arg(&config)
        .args(["jobs", "show", &job2.to_string(), "--changes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "key,op,field,before,after");
    assert!(lines.contains(&"u1,updated,first_name,Ann,Anne"), "{text}");
    assert!(lines.contains(&"u5,deactivated,enabled,1,0"), "{text}");
    assert!(lines.contains(&"u7,created,,,"), "{text}");
    assert!(
        lines.contains(&"u4,deleted,email,u4@example.com,"),
        "{text}"
    );

    // `userdrop changes`: the same changes as JSON lines.
    let out = Command::new(bin())
        .arg("--config")
        .arg(&config)
        .args(["changes", "--tenant", TENANT, "--after", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let cli: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cli, all);

    // A long poll from the end answers with the next job's change.
    let last = *seqs.last().unwrap();
    let url = api.url(&format!("/v1/tenants/acme/changes?after={last}&wait=60s"));
    let key = api.acme();
    let poll = std::thread::spawn(move || {
        Command::new("curl")
            .args(["-sS", "-H", &key, &url])
            .output()
            .unwrap()
    });
    api.env.write(
        "third.csv",
        "userId,email,firstName,lastName\nu1,u1@example.com,Anne,Uno\nu2,u2@example.com,Bobby,Two\nu3,u3@example.com,Cyd,Three\nu7,u7@example.com,Gus,Seven\n",
    );
    assert_ok(
        &sftp_key(&api.env, api.serve.port, "put third.csv\n", &[]).await,
        "sftp put",
    );
    let out = poll.join().unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        ops(v["changes"].as_array().unwrap()),
        [("u1".to_string(), "updated".to_string())]
    );
    assert_eq!(v["changes"][0]["before"]["last_name"], "One");
}

/// Changes older than `changes_retention_days` are removed at start-up;
/// a cursor from before them gets 410 with what to do, one after them
/// reads on. The first file's six creations are one row of the ledger (a
/// run): they go together, and the mark is the last of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_behind_retention_gets_410() {
    let mut api = Api::start("", "", "");
    api.env.write("first.csv", FIRST);
    assert_ok(
        &sftp_key(&api.env, api.serve.port, "put first.csv\n", &[]).await,
        "sftp put",
    );
    api.serve
        .wait_for("archived", &[("tenant", TENANT), ("file", "first.csv")]);
    // Two renames: two changes after the six creations.
    api.env.write(
        "renames.csv",
        FIRST.replace("Ann", "Anne").replace("Bob", "Bobby"),
    );
    assert_ok(
        &sftp_key(&api.env, api.serve.port, "put renames.csv\n", &[]).await,
        "sftp put",
    );
    api.serve
        .wait_for("archived", &[("tenant", TENANT), ("file", "renames.csv")]);
    let all = read_feed(&api, 0, 100);
    assert_eq!(all.len(), 8, "{all:#?}");
    let sixth = all[5]["seq"].as_i64().unwrap();
    let first_job = all[0]["job"].clone();
    api.serve.signal("TERM");
    assert!(api.serve.wait_exit_keeping_log().success());

    // The first job's changes are made old.
    let db = sql(&api.env.config.db_path());
    let aged = db
        .execute(
            "UPDATE changes SET at = '2001-01-01T00:00:00Z' WHERE job_id = ?1",
            [first_job.as_i64().unwrap()],
        )
        .unwrap();
    assert_eq!(aged, 1, "six creations in one row");
    api.start_again();
    api.serve
        .wait_for("pruned the change ledger", &[("removed", "6")]);

    let (code, v) = api.json(&["-H", &api.acme()], "/v1/tenants/acme/changes?after=0");
    assert_eq!(code, 410, "{v:#}");
    assert_eq!(v["error"]["code"], "behind_retention");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("/users"), "{message}");
    assert!(message.contains(&format!("after={sixth}")), "{message}");
    let (code, v) = api.json(
        &["-H", &api.acme()],
        &format!("/v1/tenants/acme/changes?after={sixth}"),
    );
    assert_eq!(code, 200, "{v:#}");
    assert_eq!(ops(v["changes"].as_array().unwrap()), ops(&all[6..]));
}

/// Three users who swap addresses in a ring are applied by parking one
/// address on a placeholder for a moment: the ledger records each user's
/// real address before and after, never the placeholder, and exactly one
/// change each.
#[test]
fn a_ring_of_swapped_emails_records_each_real_address_once() {
    let env = crate::util::Env::new("");
    let first = env.import_json(
        "first.csv",
        "user_id,email\nU1,a@x.example\nU2,b@x.example\nU3,c@x.example\n",
    );
    assert_eq!(first["counts"]["added"], 3, "{first:#}");
    let second = env.import_json(
        "second.csv",
        "user_id,email\nU1,b@x.example\nU2,c@x.example\nU3,a@x.example\n",
    );
    assert_eq!(second["counts"]["updated"], 3, "{second:#}");
    let job = second["job"].as_i64().unwrap().to_string();
    let out = env.run(&["jobs", "show", &job, "--changes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.remove(0), "key,op,field,before,after");
    lines.sort();
    assert_eq!(
        lines,
        [
            "U1,updated,email,a@x.example,b@x.example",
            "U2,updated,email,b@x.example,c@x.example",
            "U3,updated,email,c@x.example,a@x.example",
        ]
    );
}

/// A fresh import records its creations as runs (one row of the ledger
/// for up to 128 keys); every reader still sees one change per user, with
/// seqs that follow on: `userdrop changes --after` from inside a run, at
/// its edges or past it gives exactly the changes after that seq, and the
/// change after the runs takes the next seq.
#[test]
fn a_run_of_creations_reads_as_one_change_per_user() {
    let env = crate::util::Env::new("");
    let mut file = String::from("user_id,email\n");
    for i in 0..300 {
        file.push_str(&format!("U{i:03},u{i}@x.example\n"));
    }
    let first = env.import_json("first.csv", &file);
    assert_eq!(first["counts"]["added"], 300, "{first:#}");
    let rows: i64 = sql(&env.config.db_path())
        .query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3, "128 + 128 + 44 creations");
    let second = env.import_json("second.csv", "user_id,email\nU150,new@x.example\n");
    assert_eq!(second["counts"]["updated"], 1, "{second:#}");

    let read = |after: i64| -> Vec<(i64, String, String)> {
        let out = env.run(&["changes", "--tenant", TENANT, "--after", &after.to_string()]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["seq"].as_i64().unwrap(),
                    v["key"].as_str().unwrap().to_string(),
                    v["op"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let all = read(0);
    assert_eq!(all.len(), 301);
    let base = all[0].0;
    for (i, (seq, key, op)) in all.iter().enumerate() {
        assert_eq!(*seq, base + i as i64);
        if i < 300 {
            assert_eq!(
                (key.as_str(), op.as_str()),
                (format!("U{i:03}").as_str(), "created")
            );
        }
    }
    assert_eq!(
        (all[300].1.as_str(), all[300].2.as_str()),
        ("U150", "updated")
    );
    for cut in [1, 127, 128, 129, 200, 255, 256, 257, 299, 300, 301] {
        let after = base - 1 + cut;
        assert_eq!(read(after), all[cut as usize..], "after {after}");
    }

    // `jobs show --changes` of the first job: its 300 creations in order.
    let job = first["job"].as_i64().unwrap().to_string();
    let out = env.run(&["jobs", "show", &job, "--changes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 300);
    assert!(lines[0].starts_with("U000,created"), "{}", lines[0]);
    assert!(lines[299].starts_with("U299,created"), "{}", lines[299]);
}

/// The web page's name index follows the ledger in `userdrop serve`: after
/// an upload, a sync that renames, deletes and deactivates, and a `userdrop
/// import` run beside the daemon, a search by the start of a name finds
/// exactly the users who have that name now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_name_search_follows_uploads_renames_deletions_and_cli_imports() {
    use userdrop::store::browse::{page, Cursor, Find};
    let mut api = Api::start("", "", "mode = \"sync\"\nmax_missing_percent = 50\n");
    let db = api.env.config.db_path();
    let find = |prefix: &str| -> Vec<String> {
        let s = userdrop::store::Store::open_read_only(&db).unwrap();
        page(&s, TENANT, Find::Name(prefix), Cursor::Start, 50)
            .unwrap()
            .users
            .into_iter()
            .map(|u| u.key)
            .collect()
    };
    let last_seq = || -> String {
        sql(&db)
            .query_row("SELECT max(seq) FROM changes", [], |r| r.get::<_, i64>(0))
            .unwrap()
            .to_string()
    };
    for (name, text) in [("first.csv", FIRST), ("second.csv", SECOND)] {
        api.env.write(name, text);
        assert_ok(
            &sftp_key(&api.env, api.serve.port, &format!("put {name}\n"), &[]).await,
            "sftp put",
        );
        api.serve
            .wait_for("archived", &[("tenant", TENANT), ("file", name)]);
        let through = last_seq();
        api.serve.wait_for(
            "indexed names",
            &[("tenant", TENANT), ("through", &through)],
        );
        if name == "first.csv" {
            assert_eq!(find("ann"), ["u1"]);
            assert_eq!(find("FOUR"), ["u4"]);
            assert_eq!(find("bob"), ["u2"]);
        }
    }
    // u1 Ann → Anne, u2 Bob → Bobby, u3 Cy → Cyd, u4 deleted, u5 and u6
    // deactivated (still users), u7 Gus new.
    assert_eq!(find("anne"), ["u1"]);
    assert_eq!(find("bobb"), ["u2"]);
    assert_eq!(find("four"), Vec::<String>::new());
    assert_eq!(find("fiv"), ["u5"]);
    assert_eq!(find("gus"), ["u7"]);
    // A CLI import beside the daemon (the sync's whole list, u7 renamed):
    // found once the follower's poll ran.
    let third = api.env.write(
        "third.csv",
        "userId,email,firstName,lastName\n\
         u1,u1@example.com,Anne,One\nu2,u2@example.com,Bobby,Two\nu3,u3@example.com,Cyd,Three\n\
         u5,u5@example.com,Ed,Five\nu6,u6@example.com,Flo,Six\nu7,u7@example.com,Zed,Seven\n",
    );
    let out = Command::new(bin())
        .arg("--config")
        .arg(api.env.path("userdrop.toml"))
        .args(["import", "--tenant", TENANT])
        .arg(&third)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let through = last_seq();
    api.serve.wait_for(
        "indexed names",
        &[("tenant", TENANT), ("through", &through)],
    );
    assert_eq!(find("zed"), ["u7"]);
    assert_eq!(find("gus"), Vec::<String>::new());
    assert_eq!(find("seven"), ["u7"]);
}
