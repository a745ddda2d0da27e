//! `k8s-envelope kms-check`: does a running KMS plugin answer as
//! kube-apiserver requires? (The checks are the library's
//! `k8s_envelope_kms_plugin::check::PluginCheck`; this prints them.)
//!
//! Exit status: 0 when no check failed (warnings are printed), 1 when one
//! did (with `--strict`, also when one warned), 2 for bad usage or when
//! nothing listens on the socket.

use std::time::Duration;

use clap::{Args, ValueEnum};
use k8s_envelope::config::GoDuration;
use k8s_envelope::kms::KmsEndpoint;
use k8s_envelope_kms_plugin::check::{CheckReport, CheckedApi, Outcome, PluginCheck};

use crate::failure::Failure;

#[derive(Args, Debug)]
pub struct KmsCheckArgs {
    /// The plugin's socket: `unix:///path/to/socket` or `unix:///@abstract-name`.
    #[arg(long, value_name = "ENDPOINT")]
    endpoint: String,
    /// The timeout of every call, as in the provider's configuration
    /// (`3s`, `500ms`; the apiserver's default is 3s).
    #[arg(long, default_value = "3s", value_parser = timeout)]
    timeout: Duration,
    /// `table` for people, `json` for scripts (one object; its fields are stable).
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
    /// Warnings fail too (exit 1).
    #[arg(long)]
    strict: bool,
    /// The plugin API: `v2`, or `v1` for the deprecated KMS v1 plugins.
    #[arg(long, value_enum, default_value = "v2")]
    api: Api,
    /// Let a plugin that leaves the DEK in clear pass (a test mock, such as
    /// `kms-plugin-local --mock-base64`): `encrypt.dek_concealed` warns
    /// instead of failing.
    #[arg(long)]
    allow_insecure: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Output {
    Table,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Api {
    V2,
    V1,
}

fn timeout(text: &str) -> Result<Duration, String> {
    let parsed = GoDuration::parse(text).map_err(|e| e.to_string())?;
    match parsed.to_std() {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err("the timeout must be positive".into()),
    }
}

/// The endpoint, or what is wrong with it and what to give instead: a
/// socket's path on its own is the most common slip.
fn endpoint(text: &str) -> Result<KmsEndpoint, Failure> {
    KmsEndpoint::parse(text).map_err(|e| {
        let hint = if text.starts_with('/') || text.starts_with('@') {
            "; an endpoint is a URL: give the socket's path as unix://PATH \
             (unix:///run/kms/kms.sock), or an abstract socket as unix:///@NAME"
        } else {
            ""
        };
        Failure::usage(format!("{e}{hint}"))
    })
}

pub fn run(args: &KmsCheckArgs) -> Result<(), Failure> {
    let endpoint = endpoint(&args.endpoint)?;
    let api = match args.api {
        Api::V2 => CheckedApi::V2,
        Api::V1 => CheckedApi::V1,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the runtime: {e}")))?;
    let check = PluginCheck::new(endpoint)
        .timeout(args.timeout)
        .api(api)
        .allow_insecure(args.allow_insecure);
    let report = runtime
        .block_on(check.run())
        .map_err(|e| Failure::usage(e.to_string()))?;
    match args.output {
        Output::Table => print_table(&report, args.strict),
        Output::Json => println!("{}", json(&report, args.strict, args.allow_insecure)),
    }
    if report.passed(args.strict) {
        Ok(())
    } else {
        Err(Failure::transform(String::new()))
    }
}

fn print_table(report: &CheckReport, strict: bool) {
    println!(
        "kms-check: {} (KMS {}), timeout {}s",
        report.endpoint(),
        report.api(),
        report.timeout().as_secs_f64()
    );
    let width = report
        .checks()
        .iter()
        .map(|c| c.id.len())
        .max()
        .unwrap_or(0)
        .max("CHECK".len());
    println!("{:<width$}  {:<6}  DETAIL", "CHECK", "RESULT");
    for check in report.checks() {
        println!(
            "{:<width$}  {:<6}  {}",
            check.id, check.outcome, check.detail
        );
    }
    println!(
        "{} checks: {} passed, {} warning(s), {} failed, {} skipped{}",
        report.checks().len(),
        report.count(Outcome::Pass),
        report.count(Outcome::Warn),
        report.count(Outcome::Fail),
        report.count(Outcome::Skip),
        match (report.passed(strict), strict) {
            (true, _) => "",
            (false, true) if report.count(Outcome::Fail) == 0 => " (--strict: warnings fail)",
            (false, _) if only_the_dek_in_clear(report) => {
                ": the plugin leaves the DEK in clear (--allow-insecure passes a test mock)"
            }
            (false, _) => ": kube-apiserver would not work with this plugin",
        }
    );
}

/// Whether the one check that failed is `encrypt.dek_concealed`, a rule of
/// this tool's that kube-apiserver does not check.
fn only_the_dek_in_clear(report: &CheckReport) -> bool {
    report.count(Outcome::Fail) == 1
        && report
            .check("encrypt.dek_concealed")
            .is_some_and(|c| c.outcome == Outcome::Fail)
}

/// The JSON report: `endpoint`, `api`, `timeout_seconds`, `strict`,
/// `allow_insecure`, `passed`, `checks` (each `id`, `required`, `result`,
/// `detail`) and `summary` (counts by result).
fn json(report: &CheckReport, strict: bool, allow_insecure: bool) -> serde_json::Value {
    let checks: Vec<_> = report
        .checks()
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.id,
                "required": c.required,
                "result": c.outcome.as_str(),
                "detail": c.detail,
            })
        })
        .collect();
    serde_json::json!({
        "endpoint": report.endpoint(),
        "api": report.api().to_string(),
        "timeout_seconds": report.timeout().as_secs_f64(),
        "strict": strict,
        "allow_insecure": allow_insecure,
        "passed": report.passed(strict),
        "checks": checks,
        "summary": {
            "pass": report.count(Outcome::Pass),
            "warn": report.count(Outcome::Warn),
            "fail": report.count(Outcome::Fail),
            "skip": report.count(Outcome::Skip),
        },
    })
}
