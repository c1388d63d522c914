//! Layered configuration: embedded defaults < config file < `WAYGATE_*` environment.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use waygate_core::money::Money;
use waygate_core::pricing::{Category, RateCard};

/// The commented defaults file; it doubles as the configuration reference.
pub const DEFAULTS: &str = include_str!("../../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub database_pool_size: usize,
    pub admin_token: String,
    pub log: String,
    pub log_format: LogFormat,
    pub rate_limit_per_second: u32,
    /// Empty = each process limits alone; `redis://…` = one limit shared by every node.
    pub redis_url: String,
    pub redis_key_prefix: String,
    /// Whether sends go through (true) or are refused (false) while Redis cannot answer.
    pub redis_fail_open: bool,
    pub redis_timeout_ms: u64,
    pub simulator_step_ms: u64,
    pub webhooks_allow_private: bool,
    pub window_template_opens: bool,
    pub send_wait_ms: u64,
    pub public_url: String,
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    pub twilio_api_key_sid: String,
    pub twilio_api_key_secret: String,
    pub twilio_api_base: String,
    pub twilio_content_api_base: String,
    pub twilio_messaging_api_base: String,
    pub twilio_timeout_ms: u64,
    pub twilio_sender_mps: u32,
    pub twilio_reconcile_after_ms: u64,
    pub meta_access_token: String,
    pub meta_app_secret: String,
    pub meta_verify_token: String,
    pub meta_api_base: String,
    pub meta_api_version: String,
    pub meta_timeout_ms: u64,
    pub meta_unknown_wait_ms: u64,
    pub job_lease_ms: u64,
    pub request_timeout_ms: u64,
    pub template_pending_poll_s: u64,
    pub template_sync_s: u64,
    pub sender_sync_s: u64,
    pub reconcile_max_failures: u32,
    pub status_reconcile_after_ms: u64,
    pub status_reconcile_max_age_ms: u64,
    pub currency: String,
    pub shutdown_drain_ms: u64,
    pub header_read_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub max_connections: usize,
    pub rate_card: RateCardConfig,
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded store, in this file.
    Sqlite(PathBuf),
    /// A PostgreSQL database that several nodes may share (the URL names it).
    Postgres(String),
}

impl Database {
    /// What the database is, for messages: its file, or its URL without the password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("***"));
                    }
                    parsed.to_string()
                }
                Err(_) => "a PostgreSQL database".to_string(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateCardConfig {
    pub default: BTreeMap<String, f64>,
    #[serde(default)]
    pub countries: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl Config {
    /// Defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid {
                    key: "config".into(),
                    message: format!("file {} not found", path.display()),
                });
            }
            figment = figment.merge(Toml::file(path));
        }
        // Only keys the defaults file knows are read from the environment, so unrelated
        // WAYGATE_* variables (or WAYGATE_CONFIG itself) do not stop start-up.
        let known: Vec<String> = Figment::from(Toml::string(DEFAULTS))
            .extract::<figment::value::Dict>()
            .map(|d| d.into_keys().collect())
            .unwrap_or_default();
        figment = figment.merge(
            Env::prefixed("WAYGATE_").filter(move |k| known.iter().any(|n| k == n.as_str())),
        );
        Self::from_figment(figment)
    }

    /// Defaults overridden by `overrides` (TOML text); used by tests and the CLI.
    pub fn from_toml(overrides: &str) -> Result<Config, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(DEFAULTS)).merge(Toml::string(overrides)))
    }

    fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(Box::new)?;
        config.rate_card()?;
        let at_least_one = [
            ("twilio_sender_mps", u64::from(config.twilio_sender_mps)),
            (
                "rate_limit_per_second",
                u64::from(config.rate_limit_per_second),
            ),
            (
                "reconcile_max_failures",
                u64::from(config.reconcile_max_failures),
            ),
            ("job_lease_ms", config.job_lease_ms),
            ("redis_timeout_ms", config.redis_timeout_ms),
            ("header_read_timeout_ms", config.header_read_timeout_ms),
            ("idle_timeout_ms", config.idle_timeout_ms),
            ("request_timeout_ms", config.request_timeout_ms),
            ("template_pending_poll_s", config.template_pending_poll_s),
            ("template_sync_s", config.template_sync_s),
            ("sender_sync_s", config.sender_sync_s),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err(invalid(key, "must be at least 1"));
        }
        if config.template_pending_poll_s > 60 {
            return Err(invalid(
                "template_pending_poll_s",
                "must be at most 60: a pending template is looked at least every minute",
            ));
        }
        if config.request_timeout_ms <= config.send_wait_ms {
            return Err(invalid(
                "request_timeout_ms",
                "must be longer than send_wait_ms, which a send may wait for its provider",
            ));
        }
        if config.twilio_api_key_sid.is_empty() != config.twilio_api_key_secret.is_empty() {
            return Err(invalid(
                "twilio_api_key_sid",
                "set both twilio_api_key_sid and twilio_api_key_secret, or neither",
            ));
        }
        if !config.public_url.is_empty() {
            url::Url::parse(&config.public_url)
                .map_err(|e| invalid("public_url", &e.to_string()))?;
        }
        for (key, base) in [
            ("twilio_api_base", &config.twilio_api_base),
            ("twilio_content_api_base", &config.twilio_content_api_base),
            (
                "twilio_messaging_api_base",
                &config.twilio_messaging_api_base,
            ),
            ("meta_api_base", &config.meta_api_base),
        ] {
            url::Url::parse(base).map_err(|e| invalid(key, &e.to_string()))?;
        }
        let version = config.meta_api_version.strip_prefix('v');
        if !version.is_some_and(|v| {
            !v.is_empty()
                && v.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        }) {
            return Err(invalid("meta_api_version", "must look like v23.0"));
        }
        Ok(config)
    }

    /// The database this configuration points at.
    pub fn database(&self) -> Result<Database, ConfigError> {
        let url = self.database_url.as_str();
        if url.is_empty() {
            return Ok(Database::Sqlite(self.data_dir.join("waygate.db")));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if self.database_pool_size == 0 {
                return Err(invalid("database_pool_size", "must be at least 1"));
            }
            return Ok(Database::Postgres(url.to_string()));
        }
        Err(invalid(
            "database_url",
            "must be empty, sqlite:///path/to/file.db or postgres://…",
        ))
    }

    pub fn admin_token(&self) -> Option<&str> {
        Some(self.admin_token.as_str()).filter(|t| !t.is_empty())
    }

    /// Base URL providers call back on.
    pub fn public_base_url(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.bind)
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }

    pub fn rate_card(&self) -> Result<RateCard, ConfigError> {
        let defaults = prices("rate_card.default", &self.rate_card.default)?;
        let mut by_code = HashMap::new();
        for (code, table) in &self.rate_card.countries {
            let key = format!("rate_card.countries.{code}");
            let code: u16 = code
                .parse()
                .map_err(|_| invalid(&key, "must be a country calling code such as 44"))?;
            by_code.insert(code, prices(&key, table)?);
        }
        Ok(RateCard::new(defaults, by_code))
    }
}

fn prices(
    key: &str,
    table: &BTreeMap<String, f64>,
) -> Result<HashMap<Category, Money>, ConfigError> {
    table
        .iter()
        .map(|(name, price)| {
            let key = format!("{key}.{name}");
            let category = Category::parse(name).ok_or_else(|| {
                invalid(
                    &key,
                    "unknown category (marketing, utility, authentication, service)",
                )
            })?;
            let money = Money::parse_decimal(&price.to_string())
                .map_err(|e| invalid(&key, &e.to_string()))?;
            if money < Money::ZERO {
                return Err(invalid(&key, "must not be negative"));
            }
            Ok((category, money))
        })
        .collect()
}

fn invalid(key: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_url_picks_the_store() {
        let pick = |url: &str| Config::from_toml(&format!("database_url = {url:?}")).unwrap();
        assert_eq!(
            pick("sqlite:///var/lib/wg.db").database().unwrap(),
            Database::Sqlite(PathBuf::from("/var/lib/wg.db"))
        );
        let pg = pick("postgres://wg:hunter2@db:5432/wg").database().unwrap();
        assert_eq!(
            pg,
            Database::Postgres("postgres://wg:hunter2@db:5432/wg".into())
        );
        assert!(!pg.describe().contains("hunter2"));
        let refused = pick("mysql://db/wg").database().unwrap_err().to_string();
        assert!(refused.contains("database_url"), "{refused}");
    }

    #[test]
    fn defaults_load() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.rate_limit_per_second, 5);
        assert_eq!(
            config.database().unwrap(),
            Database::Sqlite(PathBuf::from("./data/waygate.db"))
        );
        assert!(config.admin_token().is_none());
        assert_eq!(config.shutdown_drain_ms, 10_000);
        assert_eq!(config.header_read_timeout_ms, 10_000);
        assert_eq!(config.idle_timeout_ms, 60_000);
        assert_eq!(config.max_connections, 0);
        let card = config.rate_card().unwrap();
        assert_eq!(
            card.list_price(Category::Marketing, 44),
            Money::from_micros(70_500)
        );
        assert_eq!(
            card.list_price(Category::Marketing, 1),
            Money::from_micros(62_500)
        );
    }

    #[test]
    fn meta_defaults_and_its_version_shape() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.meta_api_base, "https://graph.facebook.com");
        assert_eq!(config.meta_api_version, "v23.0");
        assert_eq!(config.meta_timeout_ms, 10_000);
        assert_eq!(config.meta_unknown_wait_ms, 300_000);
        assert!(config.meta_access_token.is_empty() && config.meta_app_secret.is_empty());
        for bad in ["23.0", "v", "v23.", "vX.0"] {
            let err = Config::from_toml(&format!("meta_api_version = {bad:?}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("meta_api_version"), "{bad}: {err}");
        }
        assert!(Config::from_toml("meta_api_version = \"v21.0\"").is_ok());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("bogus_key = 1").unwrap_err().to_string();
        assert!(err.contains("bogus_key"), "{err}");
    }

    #[test]
    fn connection_timeouts_must_be_positive() {
        for key in ["header_read_timeout_ms", "idle_timeout_ms"] {
            let err = Config::from_toml(&format!("{key} = 0"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn malformed_value_is_named() {
        let err = Config::from_toml("rate_limit_per_second = \"fast\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rate_limit_per_second"), "{err}");
        let err = Config::from_toml("[rate_card.default]\nbananas = 1.0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rate_card.default.bananas"), "{err}");
    }
}
