//! `twilio-fake` binary: serves a fake Twilio account for the load benchmark until Ctrl-C.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use twilio_fake::{CallbackMode, Config, FakeTwilio};

/// The allocator waygate uses: the system one was a sixth of the fake's instructions in
/// the drain benchmark, whose figures include the fake's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "A loopback stand-in for Twilio's WhatsApp Messages API")]
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
        ..defaults
    };
    let fake = FakeTwilio::start_on(config, args.listen).await?;
    // The benchmark reads this line to find the server.
    println!("{}", fake.base_url());
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    fake.stop().await;
    Ok(())
}
