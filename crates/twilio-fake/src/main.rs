//! `twilio-fake` binary: serves a fake Twilio account for the load benchmark until Ctrl-C.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use twilio_fake::{
    CallbackFaultRates, CallbackMode, Config, CreateFaultRates, FakeTwilio, FaultRates,
    ReadFaultRates, DEFAULT_APPROVAL_DELAY_MS,
};

/// The allocator waygate uses: the system one was a sixth of the fake's instructions in
/// the drain benchmark, whose figures include the fake's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "A loopback stand-in for Twilio's WhatsApp Messages, Content and Senders APIs")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Account SID ("AC" + 32 hex); defaults to the library's test account.
    #[arg(long)]
    account_sid: Option<String>,
    /// Auth token (Basic auth password, and the key signing callbacks).
    #[arg(long)]
    auth_token: Option<String>,
    /// Milliseconds between a message's successive status callbacks.
    #[arg(long, default_value_t = 1000)]
    step_ms: u64,
    /// Post no status callbacks at all (messages stay `queued`).
    #[arg(long)]
    no_callbacks: bool,
    /// Post status callbacks in shuffled order, each twice.
    #[arg(long)]
    reorder_and_duplicate: bool,
    /// Milliseconds before a submitted template's approval decision shows (received, then
    /// pending until then).
    #[arg(long, default_value_t = DEFAULT_APPROVAL_DELAY_MS)]
    approval_delay_ms: u64,
    /// Seed of SIDs and random faults, to replay a run (default: fresh, printed on stderr).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    rates: RateArgs,
}

/// Probabilities (0..=1) of random faults; those of one endpoint must sum to at most 1.
#[derive(clap::Args, Debug)]
struct RateArgs {
    /// Create answered 500, message not created.
    #[arg(long, default_value_t = 0.0)]
    create_server_error_rate: f64,
    /// Create answered 500 after the message was created.
    #[arg(long, default_value_t = 0.0)]
    create_created_then_error_rate: f64,
    /// Create answered 429 with Retry-After, not created.
    #[arg(long, default_value_t = 0.0)]
    create_too_many_requests_rate: f64,
    /// Create answered after --slow-ms (message created).
    #[arg(long, default_value_t = 0.0)]
    create_slow_rate: f64,
    /// Create connection closed unanswered, not created.
    #[arg(long, default_value_t = 0.0)]
    create_drop_connection_rate: f64,
    /// List and fetch answered 500.
    #[arg(long, default_value_t = 0.0)]
    read_server_error_rate: f64,
    /// List and fetch answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    read_too_many_requests_rate: f64,
    /// List and fetch answered after --slow-ms.
    #[arg(long, default_value_t = 0.0)]
    read_slow_rate: f64,
    /// List and fetch connection closed unanswered.
    #[arg(long, default_value_t = 0.0)]
    read_drop_connection_rate: f64,
    /// Status callback never posted.
    #[arg(long, default_value_t = 0.0)]
    callback_drop_rate: f64,
    /// Status callback posted twice.
    #[arg(long, default_value_t = 0.0)]
    callback_duplicate_rate: f64,
    /// Status callback held back so later ones overtake it.
    #[arg(long, default_value_t = 0.0)]
    callback_reorder_rate: f64,
    /// Retry-After seconds of random 429 answers.
    #[arg(long, default_value_t = 1)]
    retry_after_secs: u64,
    /// Delay of random slow answers, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    slow_ms: u64,
}

impl RateArgs {
    fn rates(&self) -> FaultRates {
        let read = ReadFaultRates {
            server_error: self.read_server_error_rate,
            too_many_requests: self.read_too_many_requests_rate,
            slow: self.read_slow_rate,
            drop_connection: self.read_drop_connection_rate,
            retry_after_secs: self.retry_after_secs,
            slow_ms: self.slow_ms,
        };
        FaultRates {
            create: CreateFaultRates {
                server_error: self.create_server_error_rate,
                created_then_server_error: self.create_created_then_error_rate,
                too_many_requests: self.create_too_many_requests_rate,
                slow: self.create_slow_rate,
                drop_connection: self.create_drop_connection_rate,
                retry_after_secs: self.retry_after_secs,
                slow_ms: self.slow_ms,
            },
            list: read,
            fetch: read,
            callbacks: CallbackFaultRates {
                drop: self.callback_drop_rate,
                duplicate: self.callback_duplicate_rate,
                reorder: self.callback_reorder_rate,
            },
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let defaults = Config::default();
    let config = Config {
        account_sid: args.account_sid.unwrap_or(defaults.account_sid),
        auth_token: args.auth_token.unwrap_or(defaults.auth_token),
        callbacks: if args.no_callbacks {
            CallbackMode::Off
        } else {
            CallbackMode::Auto {
                step_ms: args.step_ms,
            }
        },
        reorder_and_duplicate: args.reorder_and_duplicate,
        fault_rates: args.rates.rates(),
        approval_delay_ms: args.approval_delay_ms,
        seed: args.seed,
        ..defaults
    };
    let fake = FakeTwilio::start_on(config, args.listen).await?;
    eprintln!("twilio-fake seed {}", fake.seed());
    // The benchmark reads this line to find the server.
    println!("{}", fake.base_url());
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    fake.stop().await;
    Ok(())
}
