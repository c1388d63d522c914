//! `meta-fake` binary: serves a fake WhatsApp Business Account with Auto-mode webhooks until Ctrl-C.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use meta_fake::{
    Config, FakeMeta, FaultRates, ReadFaultRates, SendFaultRates, WebhookFaultRates, WebhookMode,
};

#[derive(Parser, Debug)]
#[command(about = "A loopback stand-in for Meta's WhatsApp Cloud API")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9091")]
    listen: SocketAddr,
    /// Where webhooks go (the client's /webhooks/meta); none = nothing is posted.
    #[arg(long)]
    webhook_url: Option<String>,
    /// Key signing webhooks (X-Hub-Signature-256); defaults to the library's.
    #[arg(long)]
    app_secret: Option<String>,
    /// The bearer token accepted; defaults to the library's.
    #[arg(long)]
    access_token: Option<String>,
    /// Milliseconds between a message's successive status webhooks.
    #[arg(long, default_value_t = 1000)]
    step_ms: u64,
    /// Statuses and changes one webhook POST carries at most.
    #[arg(long, default_value_t = 10)]
    max_items_per_post: usize,
    /// Times a refused webhook POST is posted again (after step-ms × 2^attempt).
    #[arg(long, default_value_t = 0)]
    webhook_retries: u32,
    /// Milliseconds a new template stays PENDING.
    #[arg(long, default_value_t = 100)]
    template_review_ms: u64,
    /// Accept template sends naming templates this fake does not know.
    #[arg(long)]
    any_template: bool,
    /// Post no webhooks at all (messages stay accepted).
    #[arg(long)]
    no_webhooks: bool,
    /// Seed of ids and random faults, to replay a run (default: fresh, printed on stderr).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    rates: RateArgs,
}

/// Probabilities (0..=1) of random faults; those of one endpoint must sum to at most 1.
#[derive(clap::Args, Debug)]
struct RateArgs {
    /// Send answered 500, not accepted.
    #[arg(long, default_value_t = 0.0)]
    send_server_error_rate: f64,
    /// Send answered 500 after the message was accepted.
    #[arg(long, default_value_t = 0.0)]
    send_accepted_then_error_rate: f64,
    /// Send answered 429/130429, not accepted.
    #[arg(long, default_value_t = 0.0)]
    send_rate_limited_rate: f64,
    /// Send answered after --slow-ms (accepted).
    #[arg(long, default_value_t = 0.0)]
    send_slow_rate: f64,
    /// Send connection closed unanswered, not accepted.
    #[arg(long, default_value_t = 0.0)]
    send_drop_connection_rate: f64,
    /// Template and phone number reads answered 500.
    #[arg(long, default_value_t = 0.0)]
    read_server_error_rate: f64,
    /// Template and phone number reads answered 429/80007.
    #[arg(long, default_value_t = 0.0)]
    read_rate_limited_rate: f64,
    /// Template and phone number reads answered after --slow-ms.
    #[arg(long, default_value_t = 0.0)]
    read_slow_rate: f64,
    /// Template and phone number reads closed unanswered.
    #[arg(long, default_value_t = 0.0)]
    read_drop_connection_rate: f64,
    /// Webhook item never posted.
    #[arg(long, default_value_t = 0.0)]
    webhook_drop_rate: f64,
    /// Webhook item posted twice.
    #[arg(long, default_value_t = 0.0)]
    webhook_duplicate_rate: f64,
    /// Webhook item held back so later ones overtake it.
    #[arg(long, default_value_t = 0.0)]
    webhook_reorder_rate: f64,
    /// Delay of random slow answers, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    slow_ms: u64,
}

impl RateArgs {
    fn rates(&self) -> FaultRates {
        let read = ReadFaultRates {
            server_error: self.read_server_error_rate,
            rate_limited: self.read_rate_limited_rate,
            slow: self.read_slow_rate,
            drop_connection: self.read_drop_connection_rate,
            slow_ms: self.slow_ms,
        };
        FaultRates {
            send: SendFaultRates {
                server_error: self.send_server_error_rate,
                accepted_then_server_error: self.send_accepted_then_error_rate,
                rate_limited: self.send_rate_limited_rate,
                slow: self.send_slow_rate,
                drop_connection: self.send_drop_connection_rate,
                slow_ms: self.slow_ms,
            },
            template: read,
            phone_number: read,
            webhooks: WebhookFaultRates {
                drop: self.webhook_drop_rate,
                duplicate: self.webhook_duplicate_rate,
                reorder: self.webhook_reorder_rate,
            },
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let defaults = Config::default();
    let config = Config {
        access_token: args.access_token.unwrap_or(defaults.access_token),
        app_secret: args.app_secret.unwrap_or(defaults.app_secret),
        webhook_url: args.webhook_url,
        webhooks: if args.no_webhooks {
            WebhookMode::Off
        } else {
            WebhookMode::Auto {
                step_ms: args.step_ms,
            }
        },
        max_items_per_post: args.max_items_per_post,
        webhook_retries: args.webhook_retries,
        template_review_ms: args.template_review_ms,
        known_templates_only: !args.any_template,
        fault_rates: args.rates.rates(),
        seed: args.seed,
        ..defaults
    };
    let fake = FakeMeta::start_on(config, args.listen).await?;
    eprintln!("meta-fake seed {}", fake.seed());
    // Whoever started the fake reads this line to find it.
    println!("{}", fake.base_url());
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    fake.stop().await;
    Ok(())
}
