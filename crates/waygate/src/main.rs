//! The `waygate` command: serve, migrate, openapi and admin subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;
use waygate::clock::Clock;
use waygate::config::Config;
use waygate::service::ServiceError;
use waygate::views::{AdminSenderView, MessageView, TemplateView};
use waygate::App;

#[derive(Parser)]
#[command(
    name = "waygate",
    version,
    about = "Self-hostable WhatsApp Business messaging gateway"
)]
struct Cli {
    /// Config file (TOML) layered over the embedded defaults.
    #[arg(long, global = true, env = "WAYGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server and the job runner.
    Serve {
        /// On an empty database, create a demo tenant and print its key and a curl command.
        #[arg(long)]
        demo: bool,
    },
    /// Create or upgrade the database, then exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Operator commands, the same as the admin API.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user: --name, --email.
    CreateUser {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
    },
    /// Issue an API key for a user (printed once).
    CreateApiKey {
        #[arg(long)]
        user_id: i64,
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Revoke an API key.
    RevokeApiKey {
        #[arg(long)]
        id: i64,
    },
    /// Add a sender to a user.
    CreateSender(CreateSender),
    /// Change a sender.
    UpdateSender(UpdateSender),
    /// Add a template to a sender.
    CreateTemplate(CreateTemplate),
    /// Change a template's status or provider reference.
    UpdateTemplate {
        #[arg(long)]
        id: i64,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        provider_ref: Option<String>,
    },
    /// Credit a user's balance (once per reference).
    Credit {
        #[arg(long)]
        user_id: i64,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        reference: String,
    },
    /// Simulate an inbound customer message to a simulator sender.
    SimulateInbound {
        #[arg(long)]
        sender_id: i64,
        #[arg(long)]
        from: String,
        #[arg(long)]
        body: String,
        #[arg(long)]
        profile_name: Option<String>,
    },
}

#[derive(Args)]
struct CreateSender {
    #[arg(long)]
    user_id: i64,
    #[arg(long)]
    phone_number: String,
    #[arg(long)]
    display_name: String,
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    quality_rating: Option<String>,
    #[arg(long)]
    messaging_limit: Option<i64>,
    #[arg(long)]
    provider: Option<String>,
    #[arg(long)]
    provider_ref: Option<String>,
    /// Meta: the WhatsApp Business Account id.
    #[arg(long)]
    waba_id: Option<String>,
}

#[derive(Args)]
struct UpdateSender {
    #[arg(long)]
    id: i64,
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    quality_rating: Option<String>,
    #[arg(long)]
    messaging_limit: Option<i64>,
    #[arg(long)]
    display_name: Option<String>,
}

#[derive(Args)]
struct CreateTemplate {
    #[arg(long)]
    sender_id: i64,
    #[arg(long)]
    name: String,
    #[arg(long)]
    language: String,
    #[arg(long)]
    category: String,
    #[arg(long)]
    body_text: String,
    /// Variable names, comma-separated.
    #[arg(long, value_delimiter = ',')]
    variables: Option<Vec<String>>,
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    provider_ref: Option<String>,
}

/// Builds a request object from CLI options, leaving out the ones not given.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => Map::new(),
    }
}

fn fail(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Validation(errors) | ServiceError::TemplateMismatch(errors) => {
            anyhow::anyhow!(
                "invalid input: {}",
                serde_json::to_string(&errors).unwrap_or_default()
            )
        }
        other => anyhow::anyhow!("{other}"),
    }
}

async fn admin(app: &App, command: AdminCommand) -> anyhow::Result<Value> {
    let s = app.services();
    let out = match command {
        AdminCommand::CreateUser { name, email } => {
            let u = s
                .create_user(&object(json!({ "name": name, "email": email })))
                .await
                .map_err(fail)?;
            json!({ "id": u.id, "name": u.name, "email": u.email })
        }
        AdminCommand::CreateApiKey { user_id, name } => {
            let k = s
                .create_api_key(user_id, &object(json!({ "name": name })))
                .await
                .map_err(fail)?;
            json!({ "id": k.record.id, "name": k.record.name, "prefix": k.record.prefix, "key": k.key })
        }
        AdminCommand::RevokeApiKey { id } => {
            s.revoke_api_key(id).await.map_err(fail)?;
            json!({ "revoked": id })
        }
        AdminCommand::CreateSender(a) => {
            let body = object(json!({
                "phone_number": a.phone_number, "display_name": a.display_name, "status": a.status,
                "quality_rating": a.quality_rating, "messaging_limit": a.messaging_limit,
                "provider": a.provider, "provider_ref": a.provider_ref, "waba_id": a.waba_id,
            }));
            json!(AdminSenderView::from(
                &s.create_sender(a.user_id, &body).await.map_err(fail)?
            ))
        }
        AdminCommand::UpdateSender(a) => {
            let body = object(json!({
                "status": a.status, "quality_rating": a.quality_rating,
                "messaging_limit": a.messaging_limit, "display_name": a.display_name,
            }));
            json!(AdminSenderView::from(
                &s.update_sender(a.id, &body).await.map_err(fail)?
            ))
        }
        AdminCommand::CreateTemplate(a) => {
            let body = object(json!({
                "name": a.name, "language": a.language, "category": a.category, "body_text": a.body_text,
                "variables": a.variables, "status": a.status, "provider_ref": a.provider_ref,
            }));
            json!(TemplateView::from(
                &s.create_template(a.sender_id, &body).await.map_err(fail)?
            ))
        }
        AdminCommand::UpdateTemplate {
            id,
            status,
            provider_ref,
        } => {
            let body = object(json!({ "status": status, "provider_ref": provider_ref }));
            json!(TemplateView::from(
                &s.update_template(id, &body).await.map_err(fail)?
            ))
        }
        AdminCommand::Credit {
            user_id,
            amount,
            reference,
        } => {
            let amount: Value = serde_json::from_str(&amount)
                .map_err(|_| anyhow::anyhow!("--amount must be a number"))?;
            let outcome = s
                .credit(
                    user_id,
                    &object(json!({ "amount": amount, "reference": reference })),
                )
                .await
                .map_err(fail)?;
            json!({ "total_balance": outcome.balance, "credited": outcome.created })
        }
        AdminCommand::SimulateInbound {
            sender_id,
            from,
            body,
            profile_name,
        } => {
            let input = object(
                json!({ "sender_id": sender_id, "from": from, "body": body, "profile_name": profile_name }),
            );
            json!(MessageView::from(
                &s.simulate_inbound(&input).await.map_err(fail)?
            ))
        }
    };
    Ok(out)
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    waygate::telemetry::init(&config)?;
    let bind = config.bind;
    let app = App::build(config, Clock::default()).await?;
    if demo {
        match waygate::demo::seed(app.services()).await.map_err(fail)? {
            Some(d) => println!(
                "\nDemo tenant created. API key (shown once): {key}\n\nTry:\n\ncurl -s -X POST http://{bind}/api/user/whatsapp/send \\\n  -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n  -d '{{\"sender_id\": {sender}, \"template_id\": {template}, \"recipient_phone\": \"+14155551234\", \"variables\": {{\"1\": \"Ada\", \"2\": \"#1042\", \"3\": \"Friday\"}}}}'\n",
                key = d.api_key,
                sender = d.sender_id,
                template = d.template_id,
            ),
            None => println!("The database already has users; --demo seeded nothing."),
        }
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind} (configuration key `bind`): {e}"))?;
    // Installed before serving, so that no signal can end the process without the drain.
    let stopping = stop_signal()?;
    tracing::info!(%bind, "waygate listening");
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        let signal = stopping.await;
        tracing::info!(signal, "stopping: finishing requests and jobs in flight");
        on_signal.cancel();
    });
    app.serve(listener, stop, true).await
}

/// Resolves at the first SIGTERM (`docker stop`, systemd, Kubernetes) or SIGINT (Ctrl-C),
/// naming it; both stop the server the same way.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        }
    })
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        println!("{}", waygate::http::openapi_json());
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { demo } => serve(config, demo).await,
        Command::Migrate => {
            let database = config.database()?;
            App::build_for_command(config, Clock::default()).await?;
            println!("database ready at {}", database.describe());
            Ok(())
        }
        Command::Admin(command) => {
            let app = App::build_for_command(config, Clock::default()).await?;
            let out = admin(&app, command).await?;
            app.services().store.flush().await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Openapi => Ok(()),
    }
}
