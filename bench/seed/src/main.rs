//! `bench-seed`: the load benchmark's helper (see bench/README.md).
//!
//! * `bench-seed seed` creates N tenants through waygate's admin API, ~32 requests in flight:
//!   per tenant a user, an API key, one sender (simulator or twilio), one approved utility
//!   template `Hello {{1}}, your code is {{2}}.` (with an `HX…` Content SID for twilio) and a
//!   large credit. It writes `tenants.lua` (read by `bench/send.lua`) and `tenants.json`, and
//!   prints how long seeding took.
//! * `bench-seed send` fires exactly `--count` template sends spread over the tenants and over
//!   fresh recipients, and prints the answers by status (`STATUS <code> <n>`): the drain test
//!   uses it to fill the outbox with a known number of messages.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "bench-seed", about = "Seeds and drives waygate for bench/run")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Provider {
    Simulator,
    Twilio,
}

#[derive(Subcommand)]
enum Command {
    /// Create tenants through the admin API and write tenants.lua / tenants.json.
    Seed {
        /// waygate's base URL, e.g. http://127.0.0.1:18080
        #[arg(long)]
        base: String,
        #[arg(long, env = "WAYGATE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
        /// How many tenants (users, each with one key, sender and template).
        #[arg(long, default_value_t = 1000)]
        tenants: usize,
        #[arg(long, value_enum, default_value_t = Provider::Simulator)]
        provider: Provider,
        /// Directory for tenants.lua and tenants.json.
        #[arg(long, default_value = "bench/out")]
        out: PathBuf,
        /// Admin requests in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Credit per tenant, in account currency units (a utility send to +1 costs 0.02).
        #[arg(long, default_value_t = 1_000_000)]
        credit: u64,
    },
    /// Fire exactly --count sends over the tenants and print the answers by status.
    Send {
        #[arg(long)]
        base: String,
        /// tenants.json written by `seed`.
        #[arg(long)]
        tenants_file: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        count: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Added to the recipient sequence so that separate batches use fresh recipients.
        #[arg(long, default_value_t = 0)]
        recipient_offset: usize,
        /// Append the message_id of every 200 answer to this file (one per line).
        #[arg(long)]
        acked: Option<PathBuf>,
    },
}

#[derive(Serialize, Deserialize, Clone)]
struct Tenant {
    key: String,
    sender_id: i64,
    template_id: i64,
}

/// Area codes for generated recipients; each gives 9,000 numbers `+1 AAA 555 1000..9999`.
/// `send.lua` uses the same list.
const AREAS: [&str; 10] = [
    "415", "212", "646", "312", "617", "206", "303", "512", "702", "305",
];

/// The k-th benchmark recipient (valid US numbers; suffixes 6316 and 6318, which the fake
/// Twilio fails on purpose, are skipped; 0000, which the simulator and the fake treat as
/// unreachable, never occurs).
fn recipient(k: usize) -> String {
    let per_area = 9000;
    let area = AREAS[(k / per_area) % AREAS.len()];
    let mut line = 1000 + k % per_area;
    if line == 6316 || line == 6318 {
        line += 1;
    }
    format!("+1{area}555{line:04}")
}

/// The sender number of tenant i: +1 650 2xx xxxx, distinct for up to 8 million tenants.
fn sender_phone(i: usize) -> String {
    format!("+1650{}", 2_000_000 + i)
}

fn hex32(i: usize) -> String {
    format!(
        "{:032x}",
        0xbe9c_0000_0000_0000_0000_0000_0000_0000u128 + i as u128
    )
}

struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.base, path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        return serde_json::from_str(&text)
                            .with_context(|| format!("{method} {path}: unreadable answer {text}"));
                    }
                    bail!("{method} {path} answered {status}: {text}");
                }
                // Connection-level hiccups under load: retry a few times, never on an answer.
                Err(e) if attempt < 5 && (e.is_connect() || e.is_timeout()) => {
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("{method} {path}")),
            }
        }
    }

    async fn tenant(&self, i: usize, provider: Provider, credit: u64) -> anyhow::Result<Tenant> {
        use reqwest::Method;
        let user = self
            .call(
                Method::POST,
                "/api/admin/users",
                json!({ "name": format!("Bench tenant {i}"), "email": format!("bench{i}@bench.test") }),
            )
            .await?;
        let user_id = user["id"].as_i64().context("user id")?;
        let key_path = format!("/api/admin/users/{user_id}/api-keys");
        let key = self.call(Method::POST, &key_path, json!({ "name": "bench" }));
        let credit_path = format!("/api/admin/users/{user_id}/credits");
        let credit = self.call(
            Method::POST,
            &credit_path,
            json!({ "amount": credit, "reference": format!("bench-{i}") }),
        );
        let sender_and_template = async {
            let provider_name = match provider {
                Provider::Simulator => "simulator",
                Provider::Twilio => "twilio",
            };
            let sender = self
                .call(
                    Method::POST,
                    &format!("/api/admin/users/{user_id}/senders"),
                    json!({
                        "phone_number": sender_phone(i),
                        "display_name": format!("Bench {i}"),
                        "provider": provider_name,
                    }),
                )
                .await?;
            let sender_id = sender["id"].as_i64().context("sender id")?;
            let mut body = json!({
                "name": "bench_code",
                "language": "en",
                "category": "utility",
                "body_text": "Hello {{1}}, your code is {{2}}.",
                "status": "approved",
            });
            if provider == Provider::Twilio {
                body["provider_ref"] = json!(format!("HX{}", hex32(i)));
            }
            let template = self
                .call(
                    Method::POST,
                    &format!("/api/admin/senders/{sender_id}/templates"),
                    body,
                )
                .await?;
            let template_id = template["id"].as_i64().context("template id")?;
            anyhow::Ok((sender_id, template_id))
        };
        let (key, _, (sender_id, template_id)) =
            tokio::try_join!(key, credit, sender_and_template)?;
        Ok(Tenant {
            key: key["key"].as_str().context("api key")?.to_string(),
            sender_id,
            template_id,
        })
    }
}

fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn write_tenants(out: &PathBuf, tenants: &[Tenant]) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut lua = String::from("-- written by bench-seed: one entry per tenant\nreturn {\n");
    for t in tenants {
        lua.push_str(&format!(
            "  {{ key = {}, sender_id = {}, template_id = {} }},\n",
            lua_string(&t.key),
            t.sender_id,
            t.template_id
        ));
    }
    lua.push_str("}\n");
    std::fs::write(out.join("tenants.lua"), lua)?;
    std::fs::write(out.join("tenants.json"), serde_json::to_vec(tenants)?)?;
    Ok(())
}

fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()?)
}

async fn seed(
    base: String,
    token: String,
    count: usize,
    provider: Provider,
    out: PathBuf,
    concurrency: usize,
    credit: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let admin = Arc::new(Admin {
        http: client(concurrency)?,
        base: base.trim_end_matches('/').to_string(),
        token,
    });
    let next = Arc::new(AtomicUsize::new(0));
    let results: Arc<Mutex<Vec<Option<Tenant>>>> = Arc::new(Mutex::new(vec![None; count]));
    // One tenant takes up to 3 requests in flight at once (key, credit, sender→template).
    let workers = (concurrency / 3).max(1);
    let mut handles = Vec::new();
    for _ in 0..workers {
        let (admin, next, results) = (admin.clone(), next.clone(), results.clone());
        handles.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(());
                }
                let tenant = admin.tenant(i, provider, credit).await?;
                results.lock().expect("results lock")[i] = Some(tenant);
            }
        }));
    }
    for h in handles {
        h.await??;
    }
    let tenants: Vec<Tenant> = std::mem::take(&mut *results.lock().expect("results lock"))
        .into_iter()
        .map(|t| t.expect("every tenant seeded"))
        .collect();
    write_tenants(&out, &tenants)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "SEEDED {count} tenants ({}) in {secs:.2}s ({:.0} tenants/s, {} admin requests in flight) -> {}",
        match provider {
            Provider::Simulator => "simulator",
            Provider::Twilio => "twilio",
        },
        count as f64 / secs,
        workers * 3,
        out.join("tenants.lua").display()
    );
    Ok(())
}

async fn send(
    base: String,
    tenants_file: PathBuf,
    count: usize,
    concurrency: usize,
    offset: usize,
    acked: Option<PathBuf>,
) -> anyhow::Result<()> {
    let tenants: Vec<Tenant> = serde_json::from_slice(
        &std::fs::read(&tenants_file)
            .with_context(|| format!("reading {}", tenants_file.display()))?,
    )?;
    if tenants.is_empty() {
        bail!("no tenants in {}", tenants_file.display());
    }
    let tenants = Arc::new(tenants);
    let http = client(concurrency)?;
    let url = Arc::new(format!(
        "{}/api/user/whatsapp/send",
        base.trim_end_matches('/')
    ));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..concurrency {
        let (http, url, next, tenants) = (http.clone(), url.clone(), next.clone(), tenants.clone());
        handles.push(tokio::spawn(async move {
            let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
            let mut ids: Vec<i64> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return (statuses, ids);
                }
                let t = &tenants[i % tenants.len()];
                let body = json!({
                    "sender_id": t.sender_id,
                    "template_id": t.template_id,
                    "recipient_phone": recipient(offset + i / tenants.len()),
                    "variables": { "1": "Ada", "2": format!("{:06}", i % 1_000_000) },
                });
                let status = match http
                    .post(url.as_str())
                    .bearer_auth(&t.key)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let text = resp.text().await.unwrap_or_default();
                        if status == 200 {
                            if let Some(id) = serde_json::from_str::<Value>(&text)
                                .ok()
                                .and_then(|v| v["message_id"].as_i64())
                            {
                                ids.push(id);
                            }
                        }
                        status
                    }
                    Err(_) => 0,
                };
                *statuses.entry(status).or_default() += 1;
            }
        }));
    }
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut ids = Vec::new();
    for h in handles {
        let (s, i) = h.await?;
        for (code, n) in s {
            *statuses.entry(code).or_default() += n;
        }
        ids.extend(i);
    }
    let secs = started.elapsed().as_secs_f64();
    if let Some(path) = acked {
        let mut f = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?,
        );
        for id in ids {
            writeln!(f, "{id}")?;
        }
        f.flush()?;
    }
    for (code, n) in &statuses {
        // Code 0 = the request failed without an answer.
        println!("STATUS {code} {n}");
    }
    println!("SENT {count} in {secs:.2}s ({:.0}/s)", count as f64 / secs);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Seed {
            base,
            admin_token,
            tenants,
            provider,
            out,
            concurrency,
            credit,
        } => {
            seed(
                base,
                admin_token,
                tenants,
                provider,
                out,
                concurrency,
                credit,
            )
            .await
        }
        Command::Send {
            base,
            tenants_file,
            count,
            concurrency,
            recipient_offset,
            acked,
        } => {
            send(
                base,
                tenants_file,
                count,
                concurrency,
                recipient_offset,
                acked,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_distinct_and_avoid_scripted_failures() {
        let all: std::collections::HashSet<String> = (0..90_000).map(recipient).collect();
        assert!(all.len() > 89_000);
        assert!(all
            .iter()
            .all(|r| !r.ends_with("0000") && !r.ends_with("6316") && !r.ends_with("6318")));
        assert_eq!(recipient(0), "+14155551000");
    }

    #[test]
    fn lua_strings_are_escaped() {
        assert_eq!(lua_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
