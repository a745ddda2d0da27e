//! `k8s-envelope verify`: can this store (a backup, before a restore; a
//! cluster whose LIST fails) be read with these keys, what does it depend
//! on, and what to do about each value that cannot be read.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use k8s_envelope::store::printable;
use k8s_envelope::walk::{
    self, Dependency, DependencyCount, Progress, UnreadableReason, UnreadableValue, ValueOrigin,
    VerifyOptions, VerifyReport, LIST_ERROR_LIMIT,
};
use k8s_envelope::EncryptionConfiguration;
use serde_json::{json, Value};

use crate::configuration::{self, StatusLoops};
use crate::failure::Failure;
use crate::progress_log::ProgressLog;
use crate::store_args::{self, StoreArgs};

#[derive(Args, Debug)]
#[command(group = store_args::required_store())]
pub struct VerifyArgs {
    /// The EncryptionConfiguration to read with (YAML or JSON): the keys at
    /// hand.
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// Take every value to be of this group-resource instead of telling it
    /// from its key.
    #[arg(long)]
    resource: Option<String>,
    /// How many values are decrypted and decoded at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Output format (see docs/cli.md for the fields).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Each unreadable value as it is found, then what the store depends
    /// on, the totals and what to do.
    Table,
    /// One JSON object: dependencies, unreadable values, totals.
    Json,
    /// JSON Lines: each unreadable value as it is found, then the
    /// dependencies, then one totals line.
    Jsonl,
}

/// Verifies; exit status 0 when every value reads, 1 when any does not.
pub fn run(args: &VerifyArgs) -> Result<(), Failure> {
    let runtime = store_args::runtime()?;
    let config = configuration::load(&args.config)?;
    let transformers =
        configuration::build(&config, &args.config, &runtime, StatusLoops::Run)?.transformers;
    let opened = args.store.open(&runtime)?;
    let prefix = match &args.store.prefix {
        Some(prefix) => prefix.clone(),
        None => format!("{}/", args.store.etcd_prefix.trim_end_matches('/')),
    };
    let progress = Progress::new();
    let options = VerifyOptions::new(prefix.as_bytes())
        .with_layout(args.store.layout(args.resource.as_deref()))
        .with_concurrency(usize::from(args.concurrency))
        .with_progress(progress.clone());
    let total = runtime
        .block_on(opened.store.count(prefix.as_bytes()))
        .ok()
        .flatten();
    let log = ProgressLog::start("verify", total, move || progress.values_done());

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut write_error: Option<std::io::Error> = None;
    let mut listed_any = false;
    let mut document = JsonDocument::default();
    if args.output == Format::Json {
        if let Err(e) = document.begin(&mut out) {
            write_error.get_or_insert(e);
        }
    }
    let report = runtime.block_on(walk::verify(opened.store, transformers, options, |value| {
        let written = match args.output {
            Format::Json => document.unreadable(&mut out, &unreadable_json(value)),
            Format::Jsonl => writeln!(out, "{}", unreadable_json(value)),
            Format::Table => {
                listed_any = true;
                write!(out, "{}", unreadable_lines(value))
            }
        };
        // Each value shows as it is found (a job log, a pipe), though
        // stdout is buffered for the rest.
        if let Err(e) = written.and_then(|()| out.flush()) {
            write_error.get_or_insert(e);
        }
    }));
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            let message = e.to_string();
            // The document begun is closed, saying why it is cut short.
            if args.output == Format::Json {
                let _ = document.fail(&mut out, &message).and_then(|()| out.flush());
            }
            return Err(Failure::transform(message));
        }
    };
    drop(log);
    if let Some(e) = write_error {
        return Err(Failure::transform(format!("writing stdout: {e}")));
    }
    let written = match args.output {
        Format::Table => write_table(&mut out, &config, &report, listed_any),
        Format::Jsonl => write_jsonl(&mut out, &config, &report),
        Format::Json => document.end(
            &mut out,
            &dependencies_json(&config, &report),
            &totals_json(&report),
        ),
    };
    written
        .and_then(|()| out.flush())
        .map_err(|e| Failure::transform(format!("writing stdout: {e}")))?;
    for (resource, count) in report.over_list_limit() {
        eprintln!(
            "k8s-envelope: warning: {count} {resource} cannot be read: a LIST of {resource} through the apiserver fails naming only the first {LIST_ERROR_LIMIT}; this list names every one"
        );
    }
    if report.all_readable() {
        return Ok(());
    }
    let mut message = format!(
        "{} of {} value(s) cannot be read with {}",
        report.unreadable_count() + report.unmapped,
        report.total,
        args.config.display()
    );
    if report.unmapped > 0 {
        message.push_str(&format!(
            " ({} of a resource not told from the key: give --resource)",
            report.unmapped
        ));
    }
    Err(Failure::transform(message))
}

/// `--output json`, written as the walk goes: one object whose
/// `unreadable` values are printed as they are found (so that memory stays
/// bounded however many there are), then `dependencies` and `totals`.
#[derive(Default)]
struct JsonDocument {
    unreadable: usize,
}

impl JsonDocument {
    fn begin(&mut self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        write!(out, "{{\n  \"unreadable\": [")
    }

    fn unreadable(&mut self, out: &mut impl std::io::Write, value: &Value) -> std::io::Result<()> {
        let comma = if self.unreadable == 0 { "" } else { "," };
        self.unreadable += 1;
        write!(out, "{comma}\n    {}", nested(value, 2))
    }

    /// Ends the document: what the store depends on, and the totals.
    fn end(
        &mut self,
        out: &mut impl std::io::Write,
        dependencies: &[Value],
        totals: &Value,
    ) -> std::io::Result<()> {
        let rest = format!(
            "\"dependencies\": {},\n  \"totals\": {}",
            nested(&Value::from(dependencies), 1),
            nested(totals, 1)
        );
        self.close(out, &rest)
    }

    /// Ends a document whose run failed midway: the values found so far,
    /// and why it stopped (`error`), with no dependencies or totals.
    fn fail(&mut self, out: &mut impl std::io::Write, message: &str) -> std::io::Result<()> {
        self.close(out, &format!("\"error\": {}", Value::from(message)))
    }

    /// Closes the list of unreadable values, then the object after `rest`
    /// (its last members).
    fn close(&self, out: &mut impl std::io::Write, rest: &str) -> std::io::Result<()> {
        let list_end = if self.unreadable == 0 { "]" } else { "\n  ]" };
        writeln!(out, "{list_end},\n  {rest}\n}}")
    }
}

/// `value` as pretty JSON to be written `depth` levels deep (two spaces a
/// level) in a pretty document.
fn nested(value: &Value, depth: usize) -> String {
    format!("{value:#}").replace('\n', &format!("\n{}", "  ".repeat(depth)))
}

/// An unreadable value as a JSON object (the fields docs/cli.md lists).
fn unreadable_json(value: &UnreadableValue) -> Value {
    let mut line = json!({
        "type": "unreadable",
        "key": value.key,
        "resource": shown(&value.resource.to_string()),
        "name": value.object.as_ref().map(|o| shown(&o.name)),
        "reason": value.reason.as_str(),
        "written_by": value.origin.to_string(),
        "error": value.error.as_ref().map(ToString::to_string),
        "delete": value.delete_command(),
    });
    if let Some(namespace) = value.object.as_ref().and_then(|o| o.namespace.as_deref()) {
        line["namespace"] = Value::from(shown(namespace));
    }
    line
}

/// A name from the store as printed: control and invisible characters
/// escaped.
fn shown(name: &str) -> String {
    printable(name.as_bytes())
}

/// An unreadable value for people: its key and reason (with the
/// providers' error), then the command that deletes it.
fn unreadable_lines(value: &UnreadableValue) -> String {
    let mut lines = format!("unreadable: {}: {}", value.key, value.reason);
    if let Some(error) = &value.error {
        lines.push_str(&format!(" ({error})"));
    }
    lines.push('\n');
    if let Some(command) = value.delete_command() {
        lines.push_str(&format!("  delete with: {command}\n"));
    }
    lines
}

/// One dependency as a JSON object.
fn dependency_json(
    config: &EncryptionConfiguration,
    dep: &Dependency,
    n: DependencyCount,
) -> Value {
    let mut line = json!({
        "type": "dependency",
        "resource": shown(&dep.resource.to_string()),
        "written_by": dep.origin.to_string(),
        "values": n.values,
        "readable": n.readable,
    });
    match &dep.origin {
        ValueOrigin::Identity => line["plaintext"] = Value::from(true),
        ValueOrigin::Key { provider, name } => {
            line["provider"] = Value::from(provider.to_string());
            line["key"] = Value::from(name.clone());
            line["fingerprint"] = dep.fingerprint(config).map_or(Value::Null, Value::from);
        }
        ValueOrigin::KmsV1 { name } => {
            line["provider"] = Value::from("kms");
            line["kms"] = Value::from(name.clone());
            line["api_version"] = Value::from("v1");
        }
        ValueOrigin::KmsV2 { name, key_id_hash } => {
            line["provider"] = Value::from("kms");
            line["kms"] = Value::from(name.clone());
            line["api_version"] = Value::from("v2");
            line["key_id_hash"] = key_id_hash.clone().map_or(Value::Null, Value::from);
            line["plugin_read"] = Value::from(n.readable > 0);
        }
        _ => {}
    }
    line
}

fn dependencies_json(config: &EncryptionConfiguration, report: &VerifyReport) -> Vec<Value> {
    report
        .dependencies
        .iter()
        .map(|(dep, n)| dependency_json(config, dep, *n))
        .collect()
}

fn totals_json(report: &VerifyReport) -> Value {
    let mut reasons = serde_json::Map::new();
    for ((_, reason), n) in &report.unreadable {
        let entry = reasons.entry(reason.as_str()).or_insert(Value::from(0u64));
        *entry = Value::from(entry.as_u64().unwrap_or(0) + n);
    }
    json!({
        "type": "totals",
        "values": report.total,
        "readable": report.readable,
        "stale": report.stale,
        "unreadable": report.unreadable_count(),
        "unreadable_by_reason": reasons,
        "unmapped": report.unmapped,
        "internal": report.internal,
        "over_list_limit": report.over_list_limit().iter().map(|(resource, n)| json!({
            "resource": resource.to_string(),
            "unreadable": n,
        })).collect::<Vec<_>>(),
        "all_readable": report.all_readable(),
    })
}

fn write_jsonl(
    out: &mut impl std::io::Write,
    config: &EncryptionConfiguration,
    report: &VerifyReport,
) -> std::io::Result<()> {
    for line in dependencies_json(config, report) {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "{}", totals_json(report))
}

/// The dependencies, the totals and what to do about each reason met.
fn write_table(
    out: &mut impl std::io::Write,
    config: &EncryptionConfiguration,
    report: &VerifyReport,
    after_unreadable: bool,
) -> std::io::Result<()> {
    if after_unreadable {
        writeln!(out)?;
    }
    let mut rows = vec![[
        "RESOURCE".to_owned(),
        "WRITTEN BY".to_owned(),
        "NEEDS".to_owned(),
        "VALUES".to_owned(),
        "READ".to_owned(),
    ]];
    for (dep, n) in &report.dependencies {
        let needs = match &dep.origin {
            ValueOrigin::Identity => "nothing (plaintext)".to_owned(),
            ValueOrigin::Key { .. } => dep
                .fingerprint(config)
                .unwrap_or_else(|| "a key the configuration does not have".to_owned()),
            ValueOrigin::KmsV1 { .. } => "its KMS v1 plugin".to_owned(),
            ValueOrigin::KmsV2 { .. } => "its KMS v2 plugin's key".to_owned(),
            _ => "a provider the configuration does not have".to_owned(),
        };
        rows.push([
            shown(&dep.resource.to_string()),
            dep.origin.to_string(),
            needs,
            n.values.to_string(),
            n.readable.to_string(),
        ]);
    }
    write_aligned(out, &rows)?;
    writeln!(
        out,
        "total: {} values: {} readable ({} stale), {} unreadable{}{}",
        report.total,
        report.readable,
        report.stale,
        report.unreadable_count(),
        if report.unmapped > 0 {
            format!(", {} of an unknown resource", report.unmapped)
        } else {
            String::new()
        },
        if report.internal > 0 {
            format!(", {} internal", report.internal)
        } else {
            String::new()
        },
    )?;
    let mut met: Vec<UnreadableReason> = report.unreadable.keys().map(|(_, r)| *r).collect();
    met.sort();
    met.dedup();
    for reason in met {
        writeln!(out, "{reason}: {}", what_to_do(reason))?;
    }
    Ok(())
}

fn write_aligned(out: &mut impl std::io::Write, rows: &[[String; 5]]) -> std::io::Result<()> {
    let mut widths = [0usize; 5];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        )?;
    }
    Ok(())
}

/// What an operator does about values unreadable for `reason` (the
/// runbook, docs/recovering-from-a-backup.md, says more).
fn what_to_do(reason: UnreadableReason) -> &'static str {
    match reason {
        UnreadableReason::NoProvider => "the provider that wrote them (WRITTEN BY) is not in their rule: add it back (from the configuration the backup was taken with) and verify again",
        UnreadableReason::UnknownKey => "their provider lacks the key named in the error: add that key back and verify again; delete only what was written with a key that is lost for good",
        UnreadableReason::AuthenticationFailed => "damaged or tampered with, under a key that is there: restore these objects from another backup, or delete them",
        UnreadableReason::KmsRefused => "the KMS plugin refuses their DEK or seed (a key it no longer has): give the plugin the old key and verify again; delete only what no key will ever read",
        UnreadableReason::KmsUnavailable => "the KMS plugin did not answer: this is no verdict on the values; start the plugin and verify again, never delete for this",
        UnreadableReason::NotAnObject => "they decrypt, but hold no Kubernetes object (written by something else than the apiserver): delete them, or restore them from another backup",
        _ => "see docs/recovering-from-a-backup.md",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document as written with `values` unreadable values, ended or
    /// failed: always one JSON object with them in order.
    fn written(values: usize, failed: bool) -> Value {
        let mut out = Vec::new();
        let mut document = JsonDocument::default();
        document.begin(&mut out).expect("written");
        for i in 0..values {
            document
                .unreadable(&mut out, &json!({"key": i, "nested": {"a": [1, 2]}}))
                .expect("written");
        }
        if failed {
            document
                .fail(&mut out, "etcd \"gone\"\nfor good")
                .expect("written");
        } else {
            document
                .end(
                    &mut out,
                    &[json!({"type": "dependency"})],
                    &json!({"type": "totals"}),
                )
                .expect("written");
        }
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
    }

    #[test]
    fn the_json_document_is_one_object_however_it_ends() {
        for values in 0..3 {
            let ended = written(values, false);
            let keys: Vec<Value> = (0..values).map(|i| json!(i)).collect();
            let listed: Vec<Value> = ended["unreadable"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v["key"].clone())
                .collect();
            assert_eq!(listed, keys);
            assert_eq!(ended["dependencies"], json!([{"type": "dependency"}]));
            assert_eq!(ended["totals"], json!({"type": "totals"}));
            let failed = written(values, true);
            assert_eq!(failed["unreadable"].as_array().map(Vec::len), Some(values));
            assert_eq!(failed["error"], "etcd \"gone\"\nfor good");
            assert!(failed.get("totals").is_none());
        }
    }
}
