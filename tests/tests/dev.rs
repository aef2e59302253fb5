//! `ultra dev` starts from nothing on SQLite, the seeded merchant can log in, and its first
//! payment reaches a webhook receiver on the same laptop.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::json;
use ultra_tests::{
    free_port,
    receiver::{Behaviour, Receiver},
    ultra_bin, wait_ready,
};

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn dev_starts_from_nothing_and_the_seeded_merchant_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let api_port = free_port();
    let sandbox_port = free_port();
    let mut child = Command::new(ultra_bin())
        .arg("dev")
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("ULTRA_API_ADDR", format!("127.0.0.1:{api_port}"))
        .env("ULTRA_SANDBOX_ADDR", format!("127.0.0.1:{sandbox_port}"))
        .env("ULTRA_REDIS_PREFIX", format!("dev-test-{api_port}:"))
        .env("ULTRA_WORKER_ADDR", "")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut child = Killed(child);

    // The seeded credentials are printed once, before the servers start.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut merchant_password = None;
    while merchant_password.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("ultra dev prints the seeded accounts");
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"merchant") && words.len() == 3 {
            merchant_password = Some(words[2].to_owned());
        }
    }
    let log = dir.path().join("none.log");
    wait_ready(&mut child.0, &format!("http://127.0.0.1:{api_port}/readyz"), &log).await;
    assert!(dir.path().join("ultra.db").exists(), "the embedded SQLite file was created");

    let client = reqwest::Client::new();
    let login = client
        .post(format!("http://127.0.0.1:{api_port}/api/v1/auth/login"))
        .json(&json!({ "email": "merchant@ultra.local", "password": merchant_password.unwrap() }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(!cookie.contains("Secure"), "a laptop serves plain HTTP: {cookie}");
    let token =
        login.json::<serde_json::Value>().await.unwrap()["data"]["token"].as_str().unwrap().to_owned();

    // A receiver on the laptop is accepted, and answers 500 once to show a retry.
    let receiver = Receiver::start(Behaviour::FailFirst(1)).await;
    let endpoint = client
        .post(format!("http://127.0.0.1:{api_port}/api/v1/webhooks/endpoints"))
        .bearer_auth(&token)
        .json(&json!({ "url": receiver.url(), "secret": "a laptop secret of 24+", "events": ["payment.completed"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(endpoint.status(), StatusCode::CREATED, "{}", endpoint.text().await.unwrap());

    // Providers come configured, and the worker inside `ultra dev` collects the first payment.
    let payment: serde_json::Value = client
        .post(format!("http://127.0.0.1:{api_port}/api/v1/payments"))
        .bearer_auth(&token)
        .header("Prefer", "wait=10")
        .json(&json!({ "provider": "mvola", "amount": "10000", "customerPhone": "0340000000" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(payment["data"]["status"], "completed", "{payment}");

    // Collected in live mode, through the embedded sandbox's MVola.
    let reference = payment["data"]["reference"].as_str().unwrap();
    let transactions: serde_json::Value = client
        .get(format!("http://127.0.0.1:{sandbox_port}/_sandbox/transactions?reference={reference}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(transactions[0]["provider"], "mvola", "{transactions}");
    assert_eq!(transactions[0]["status"], "completed", "{transactions}");

    // The webhook is retried within seconds, as a developer watching it expects.
    let received = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(received[0].json()["data"]["id"], payment["data"]["id"]);
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_millis(1500) && gap < Duration::from_secs(5), "retried after {gap:?}");
}

#[tokio::test]
async fn dev_says_how_to_start_redis_when_it_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let unused = free_port();
    let out = Command::new(ultra_bin())
        .arg("dev")
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("REDIS_URL", format!("redis://127.0.0.1:{unused}"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Redis is not answering"), "{stderr}");
    assert!(stderr.contains("redis-server"), "{stderr}");
}
