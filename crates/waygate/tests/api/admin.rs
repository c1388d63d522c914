//! The admin API's rules and the `waygate` command line (admin subcommands, configuration
//! errors).

use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

fn waygate(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_waygate"))
        .args(args)
        .env("WAYGATE_DATA_DIR", data_dir)
        .env("WAYGATE_LOG", "error")
        .output()
        .expect("run waygate")
}

fn json_out(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[tokio::test]
async fn admin_api_is_off_without_a_token_and_guards_with_one() {
    let off = spawn_with("admin_token = \"\"\n").await;
    let reply = off
        .request(
            Method::POST,
            "/api/admin/users",
            Some("anything"),
            Some(json!({"name": "a", "email": "a@b.c"})),
        )
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body["error_code"], "NOT_FOUND");

    let app = spawn_app().await;
    let t = app.tenant().await;
    for token in [None, Some("wrong"), Some(t.key.as_str())] {
        let reply = app
            .request(
                Method::POST,
                "/api/admin/users",
                token,
                Some(json!({"name": "a", "email": "a@b.c"})),
            )
            .await;
        assert_eq!(reply.status, 401, "{token:?}");
        assert_eq!(reply.body["error_code"], "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn senders_and_templates_are_validated_and_patched() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let bad = app
        .request(
            Method::POST,
            &format!("/api/admin/users/{}/senders", t.user_id),
            Some(ADMIN),
            Some(json!({"phone_number": "12345", "display_name": "", "provider": "pigeon"})),
        )
        .await;
    assert_eq!(bad.status, 422);
    for field in ["phone_number", "display_name", "provider"] {
        assert!(
            bad.body["errors"][field].is_array(),
            "{field}: {}",
            bad.body
        );
    }
    let patched = app
        .admin(
            Method::PATCH,
            &format!("/api/admin/senders/{}", t.sender_id),
            json!({"messaging_limit": 10000, "quality_rating": "YELLOW"}),
        )
        .await;
    assert_eq!(patched["messaging_limit_formatted"], "10,000 / 24hr");
    assert_eq!(patched["quality_rating"], "YELLOW");
    assert_eq!(patched["provider"], "simulator");
    let out_of_order = app
        .request(
            Method::POST,
            &format!("/api/admin/senders/{}/templates", t.sender_id),
            Some(ADMIN),
            Some(json!({"name": "x", "language": "en", "category": "utility", "body_text": "Hi {{2}} {{1}}"})),
        )
        .await;
    assert_eq!(out_of_order.status, 422);
    assert!(out_of_order.body["errors"]["body_text"].is_array());
    let duplicate = app
        .request(
            Method::POST,
            &format!("/api/admin/senders/{}/templates", t.sender_id),
            Some(ADMIN),
            Some(
                json!({"name": "code", "language": "en", "category": "utility", "body_text": "Hi"}),
            ),
        )
        .await;
    assert_eq!(duplicate.status, 422);
    let template = app
        .admin(
            Method::PATCH,
            &format!("/api/admin/templates/{}", t.template_id),
            json!({"status": "paused"}),
        )
        .await;
    assert_eq!(template["status"], "paused");
    let listed = app
        .get(
            &format!(
                "/api/user/whatsapp/senders/{}/templates?status=paused",
                t.sender_id
            ),
            &t.key,
        )
        .await;
    assert_eq!(listed.body["data"][0]["id"], t.template_id);
    assert_eq!(listed.body["data"][0]["variables"], json!(["name", "code"]));
    assert_eq!(listed.body["data"][0]["has_variables"], true);
}

#[tokio::test]
async fn command_line_admin_creates_a_working_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let user = json_out(&waygate(
        dir.path(),
        &[
            "admin",
            "create-user",
            "--name",
            "Zoë",
            "--email",
            "zoe@example.com",
        ],
    ));
    let user_id = user["id"].as_i64().unwrap().to_string();
    let key = json_out(&waygate(
        dir.path(),
        &["admin", "create-api-key", "--user-id", &user_id],
    ));
    let credit = json_out(&waygate(
        dir.path(),
        &[
            "admin",
            "credit",
            "--user-id",
            &user_id,
            "--amount",
            "2.5",
            "--reference",
            "r1",
        ],
    ));
    assert_eq!(credit["total_balance"], json!(2.5));
    let sender = json_out(&waygate(
        dir.path(),
        &[
            "admin",
            "create-sender",
            "--user-id",
            &user_id,
            "--phone-number",
            "+44 20 7183 8750",
            "--display-name",
            "UK",
        ],
    ));
    assert_eq!(sender["phone_number"], "+442071838750");
    let bad = waygate(
        dir.path(),
        &[
            "admin",
            "create-sender",
            "--user-id",
            &user_id,
            "--phone-number",
            "nope",
            "--display-name",
            "x",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("phone_number"));

    // The server started on the same database accepts the key.
    let toml = format!(
        "data_dir = {:?}\nadmin_token = \"t\"\n",
        dir.path().display().to_string()
    );
    let app = waygate::App::build(
        waygate::config::Config::from_toml(&toml).unwrap(),
        Default::default(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(app.serve(listener, stop.clone(), false));
    let me: Value = reqwest::Client::new()
        .get(format!("{base}/api/user/me"))
        .bearer_auth(key["key"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Zoë");
    assert_eq!(me["total_balance"], json!(2.5));

    // A key revoked from the command line (another process) stops working on the running
    // server, although the server had it cached: it polls the directory version each second.
    let key_id = key["id"].as_i64().unwrap().to_string();
    let revoked = waygate(dir.path(), &["admin", "revoke-api-key", "--id", &key_id]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let mut status = reqwest::StatusCode::OK;
    for _ in 0..50 {
        status = reqwest::Client::new()
            .get(format!("{base}/api/user/me"))
            .bearer_auth(key["key"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.cancel();
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
}

#[test]
fn bad_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_waygate"))
        .arg("migrate")
        .env("WAYGATE_DATA_DIR", dir.path())
        .env("WAYGATE_RATE_LIMIT_PER_SECOND", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .to_lowercase()
        .contains("rate_limit_per_second"));

    let file = dir.path().join("waygate.toml");
    std::fs::write(&file, "bind = \"127.0.0.1:0\"\nbindd = \"oops\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_waygate"))
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .env("WAYGATE_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bindd"));

    let ok = Command::new(env!("CARGO_BIN_EXE_waygate"))
        .arg("migrate")
        .env("WAYGATE_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(dir.path().join("waygate.db").exists());
}
